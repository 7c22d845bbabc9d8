"""The committed non-Python files agree with the code: dbt sources, docker-compose."""

from __future__ import annotations

import yaml

from lake import layout
from pipeline.config import load_project
from tests.conftest import REPO


def _dbt_sources() -> dict[str, dict]:
    sources = {}
    for path in (REPO / "dbt_project" / "models" / "staging").rglob("_*__sources.yml"):
        for source in yaml.safe_load(path.read_text())["sources"]:
            sources[source["name"]] = source
    return sources


def test_dbt_sources_match_lakehouse_yml_and_the_lake_layout() -> None:
    project = load_project(REPO / "lakehouse.yml", env={})
    dbt = _dbt_sources()
    declared = {(s.name, t.name) for s in project.spec.sources for t in s.tables}
    in_dbt = {(name, t["name"]) for name, s in dbt.items() for t in s["tables"]}
    assert declared == in_dbt
    profile = yaml.safe_load((REPO / "dbt_project" / "profiles.yml").read_text())
    attach = profile["lakehouse"]["outputs"]["lake"]["attach"]
    # read-write: dbt builds the marts into lake._build (sources stay read by dbt only)
    assert [(a["alias"], a.get("read_only", False)) for a in attach] == [("lake", False)]
    assert "LAKEHOUSE_DUCKLAKE" in attach[0]["path"] and "ducklake:sqlite:" in attach[0]["path"]
    assert "/catalog.sqlite" in attach[0]["path"]  # a local lake's default catalog
    for name, source in dbt.items():
        for table in source["tables"]:
            # dbt-duckdb renders a source as <database>.<schema (the source name)>.<table>
            assert f"{source['database']}.{name}.{table['name']}" == layout.raw_table(
                name, table["name"]
            )


def test_docker_compose_structure() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"minio", "create-bucket", "postgres", "pipeline"} <= set(services)
    bucket = services["create-bucket"]
    assert bucket["depends_on"]["minio"]["condition"] == "service_healthy"
    assert "mc mb" in " ".join(
        bucket["entrypoint"] if isinstance(bucket["entrypoint"], list) else [bucket["entrypoint"]]
    )
    pipeline = services["pipeline"]
    assert pipeline["depends_on"]["create-bucket"]["condition"] == (
        "service_completed_successfully"
    )
    env = pipeline["environment"]
    for var in (
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "LAKEHOUSE_LAKE_URL",
        "LAKEHOUSE_CATALOG",
    ):
        assert var in env, var
    assert env["LAKEHOUSE_LAKE_URL"].startswith("s3://")
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert env["LAKEHOUSE_CATALOG"].startswith("postgres:")  # shared by every container
    assert "healthcheck" in services["minio"] and "healthcheck" in services["postgres"]
    # no secret literals for the pipeline: they come from the environment / .env
    assert env["AWS_SECRET_ACCESS_KEY"].startswith("${")
    assert (REPO / "Dockerfile").exists()


def _interpolated(value: object) -> object:
    """`${VAR:-default}` and `${VAR}` in every value, as compose resolves them with
    nothing set (`$$` is a literal `$`)."""
    import re

    if isinstance(value, dict):
        return {k: _interpolated(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolated(v) for v in value]
    if isinstance(value, str):
        pattern = r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}"
        text = re.sub(pattern, lambda m: m.group(1) or "", value.replace("$$", "\0"))
        return text.replace("\0", "$")
    return value


def test_docker_compose_is_valid_and_complete() -> None:
    """Validated against the Compose Specification's JSON schema (compose-spec/compose-spec,
    schema/compose-spec.json, vendored in tests/data): what `docker compose config`
    checks, without Docker."""
    import json

    import jsonschema

    schema = json.loads((REPO / "tests" / "data" / "compose-spec.json").read_text())
    compose = _interpolated(yaml.safe_load((REPO / "docker-compose.yml").read_text()))
    assert isinstance(compose, dict)
    jsonschema.validate(compose, schema)
    services = compose["services"]
    assert {
        "minio",
        "create-bucket",
        "postgres",
        "mosquitto",
        "pipeline",
        "scheduler",
        "docs",
        "metabase",
        "metabase-setup",
        "collector",
        "stream",
    } <= set(services)
    for name, service in services.items():
        for dep in service.get("depends_on", {}):
            assert dep in services, (name, dep)
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in compose["volumes"], (name, source)
        if service.get("restart") == "unless-stopped" or name in (
            "minio",
            "postgres",
            "mosquitto",
            "metabase",
        ):
            assert "healthcheck" in service or name in ("collector", "stream"), name
        if "image" in service:
            assert ":" in service["image"] and not service["image"].endswith(":latest"), name
    # the pipeline runs on a schedule after its first run, and serves BI and the docs
    assert services["scheduler"]["depends_on"]["pipeline"]["condition"] == (
        "service_completed_successfully"
    )
    assert "lakehouse schedule" in " ".join(services["scheduler"]["command"])
    assert services["scheduler"]["environment"]["LAKEHOUSE_SCHEDULE"]
    assert services["pipeline"]["environment"]["SERVING_POSTGRES_URL"].endswith("/serving")
    assert "CREATE DATABASE serving" in (REPO / "scripts" / "compose-lake-catalog.sql").read_text()
    assert services["metabase-setup"]["command"] == ["python", "-m", "pipeline.metabase"]
    assert "--serve" in " ".join(services["docs"]["command"])
    env_example = (REPO / ".env.example").read_text()
    for var in ("MINIO_ROOT_PASSWORD", "POSTGRES_PASSWORD", "BI_READER_PASSWORD",
                "MB_ADMIN_PASSWORD", "LAKEHOUSE_SCHEDULE"):  # fmt: skip
        assert f"{var}=" in env_example, var
    # the lakehouse.yml in the image reads what compose sets
    project = load_project(REPO / "lakehouse.yml", env=services["scheduler"]["environment"])
    assert project.spec.serving.postgres.enabled
    assert project.spec.schedule.default == "*/15 * * * *"


def test_the_image_runs_as_a_user_with_its_assets_fetched_at_build() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "python -m expectations.docs_assets" in dockerfile  # Data Docs assets, no npm
    assert "python -m lake.extensions" in dockerfile
    assert "npm" not in dockerfile.split("RUN", 1)[1]
    users = [ln.split()[1] for ln in dockerfile.splitlines() if ln.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    ignored = (REPO / ".dockerignore").read_text().split()
    for path in (".git", ".venv", "data", "bench", "tests", ".env"):
        assert path in ignored, path


def test_the_init_template_profile_is_the_example_s() -> None:
    """`lakehouse init` ships the example's profile (it must not drift from it)."""
    template = REPO / "pipeline" / "templates" / "init" / "dbt" / "profiles.yml"
    assert template.read_text() == (REPO / "dbt_project" / "profiles.yml").read_text()
