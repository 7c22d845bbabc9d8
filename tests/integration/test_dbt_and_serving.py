"""dbt by hand with the committed profile; serving stays readable during builds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from lake import extensions
from pipeline.run import run_pipeline
from pipeline.transform import run_dbt
from tests.conftest import REPO
from tests.integration.helpers import serving_scalar, shop_db


def _dbt(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "AWS_", "DBT_"))
    }
    clean.update(env)
    clean["DBT_TARGET_PATH"] = str(tmp_path / "target")
    clean["DBT_LOG_PATH"] = str(tmp_path / "logs")
    dbt = str(Path(sys.executable).parent / "dbt")
    return subprocess.run(
        [dbt, *args],
        cwd=REPO / "dbt_project",
        env=clean,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_dbt_parse_offline(tmp_path: Path) -> None:
    result = _dbt(["parse"], {}, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("lake_kind", ["local", "s3"])
def test_dbt_build_by_hand_with_the_committed_profile(
    lake_kind: str, make_project, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # the default extension dir of profiles.yml (../.duckdb_extensions) is what
    # `make install` fills; this test uses the same default
    assert extensions.default_dir() == REPO / ".duckdb_extensions" or os.environ.get(
        extensions.EXTENSION_DIR_ENV
    )
    extensions.install(REPO / ".duckdb_extensions")
    if lake_kind == "local":
        project = make_project()
        env = {"LAKEHOUSE_LAKE_URL": project.lake.settings.url}
    else:
        bucket, s3env = request.getfixturevalue("s3_bucket")
        url = f"s3://{bucket}/byhand"
        project = make_project(lake_url=url, env=s3env)
        # the standard variables, and where this S3 lake's catalog is
        env = {**s3env, "LAKEHOUSE_LAKE_URL": url,
               "LAKEHOUSE_DUCKLAKE": project.lake.settings.ducklake_uri}  # fmt: skip
    run_pipeline(project, stages=("ingest",))
    env["LAKEHOUSE_BUILD_DB"] = str(tmp_path / "by_hand.duckdb")
    result = _dbt(["build"], env, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Completed successfully" in result.stdout
    assert "PASS=" in result.stdout and "ERROR=0" in result.stdout


def test_readers_keep_reading_while_the_next_build_and_publish_run(make_project) -> None:
    project = make_project()
    run_pipeline(project)
    first_run = serving_scalar(project, "SELECT run_id FROM _lakehouse_publication")
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(project.serving_db)!r}, read_only=True)
            n = 0
            end = time.monotonic() + 600
            while time.monotonic() < end:
                n = con.execute("SELECT count(*) FROM fct_orders").fetchone()[0]
                if sys.stdin.readline().strip() == "stop":
                    break
            print(n)
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # build + gate + publish while the reader holds the serving file open
        record = run_pipeline(project, stages=("build", "check_marts", "publish"))
        assert record.status == "passed"
        out, err = reader.communicate("go\nstop\n", timeout=60)
    finally:
        reader.kill()
    assert reader.returncode == 0, err
    assert int(out.strip()) > 0
    assert serving_scalar(project, "SELECT run_id FROM _lakehouse_publication") != first_run


def test_failed_dbt_build_names_the_failing_test(make_project) -> None:
    project = make_project()
    run_pipeline(project, stages=("ingest",))
    # an order line whose order does not exist
    shop_db(project, "INSERT INTO order_items VALUES (99999998, 77777777, 1, 1, 10.00, 0.00)")
    run_pipeline(project, stages=("ingest",))
    result = run_dbt(project, ["build"])
    assert not result.ok
    assert (
        "test relationships(order_id -> stg_shop__orders.order_id) on stg_shop__order_items: "
        "Got 1 result, configured to fail if != 0"
    ) in result.failures, result.failures


def test_a_key_twice_in_one_batch_fails_the_build_with_what_to_do(make_project) -> None:
    project = make_project()
    run_pipeline(project, stages=("ingest",))
    # the extract sends the same order line twice (ingest alone: no raw gate ran)
    shop_db(
        project, "CREATE TABLE dup AS SELECT * FROM order_items ORDER BY order_item_id DESC LIMIT 1"
    )
    shop_db(project, "UPDATE dup SET order_item_id = 99999997")
    shop_db(project, "INSERT INTO order_items SELECT * FROM dup UNION ALL SELECT * FROM dup")
    run_pipeline(project, stages=("ingest",))
    result = run_dbt(project, ["build"])
    assert not result.ok
    failure = next(f for f in result.failures if "unique_within_batch" in f)
    assert failure.startswith(
        "test unique_within_batch(order_item_id) on source shop.order_items: Got 1 result"
    ), failure
    assert "`lakehouse check raw` moves the batch to quarantine" in failure
    # the raw gate does what the message says, and the next build passes
    from pipeline.gates import check_raw

    assert not check_raw(project).ok
    assert run_dbt(project, ["build"]).ok


def test_every_column_an_analyst_can_query_is_documented(make_project) -> None:
    project = make_project()
    run_pipeline(project, stages=("ingest", "build"))
    manifest = json.loads((project.warehouse_dir / "dbt/target/manifest.json").read_text())
    con = duckdb.connect(str(project.build_db), read_only=True)
    built = con.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE table_schema IN ('main', 'staging', 'intermediate')"
    ).fetchall()
    con.close()
    docs = {
        (n["schema"], n["alias"]): {c: v.get("description") for c, v in n["columns"].items()}
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model"
    }
    missing = [f"{t}.{c}" for s, t, c in built if (s, t) in docs and not docs[(s, t)].get(c)]
    assert len({(s, t) for s, t, _ in built} & set(docs)) >= 20
    assert missing == []
    assert all(
        n["description"] for n in manifest["nodes"].values() if n["resource_type"] == "model"
    )


def test_dbt_docs_generate_offline(make_project) -> None:
    from expectations.docs_assets import external_assets

    project = make_project()
    run_pipeline(project)
    from tests.integration.helpers import cli

    result = cli(project, "docs")
    assert result.returncode == 0, result.stderr
    site = project.warehouse_dir / "dbt" / "target"
    assert f"dbt docs: {site / 'index.html'}" in result.stdout
    assert (site / "catalog.json").exists() and (site / "manifest.json").exists()
    assert external_assets(site) == []  # dbt's site is one self-contained page
