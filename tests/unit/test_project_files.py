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
