"""dbt by hand with the committed profile; serving stays readable during builds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from examples.shop.shop_day import next_day
from lake import extensions
from pipeline.run import run_pipeline
from pipeline.summary import analyst_sql
from pipeline.transform import run_dbt
from tests.conftest import REPO
from tests.integration.helpers import cli, published_run, serving_scalar, shop_db


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


ORDERS_AND_KPIS = (
    "SELECT (SELECT count(*) FROM fct_orders), (SELECT sum(orders) FROM mart_daily_kpis)"
)


def _orders_and_kpis(project) -> tuple:
    from pipeline.serve import query

    return tuple(query(project, ORDERS_AND_KPIS)[1][0])


def test_readers_see_one_published_set_or_the_next_never_a_mix(make_project) -> None:
    """An analyst's DuckDB session reads the marts in a loop while the next day's build,
    gate and publish run: it is never blocked, and every read sees the orders and the daily
    KPIs of one published set (the old one or the new one), never one of each."""
    project = make_project(built=True)  # as the session's first run left it
    first_run = published_run(project)
    stop = project.base_dir / "stop-reading"
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import duckdb, json, pathlib
            from lake.duck import connection_config
            con = duckdb.connect(config=connection_config())
            con.execute({analyst_sql(project)!r})
            seen, reads = set(), 0
            while True:
                done = pathlib.Path({str(stop)!r}).exists()  # the new set is published
                seen.add(con.execute({ORDERS_AND_KPIS!r}).fetchone())
                reads += 1
                if done and reads >= 3:
                    break
            print(json.dumps([reads, sorted(seen)]))
        """),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        before = _orders_and_kpis(project)
        next_day(project.base_dir / "sources" / "shop.sqlite", fraction=0.05)
        record = run_pipeline(project)
        assert record.status == "passed", record.error
        after = _orders_and_kpis(project)
        stop.touch()
        out, err = reader.communicate(timeout=120)
    finally:
        reader.kill()
    assert reader.returncode == 0, err[-3000:]
    reads, seen = json.loads(out)
    assert reads >= 3
    # each read saw the orders and the KPIs of one set: no (old orders, new KPIs)
    assert before != after and before[0] != after[0] and before[1] != after[1]
    assert {tuple(pair) for pair in seen} <= {before, after}, (seen, before, after)
    assert list(after) in seen  # the same session sees the new set without reconnecting
    assert published_run(project) == record.run_id != first_run


def test_rollback_and_query_at_an_earlier_run(make_project, first_run) -> None:
    project = make_project(built=True)
    first = first_run[1]  # the session's first run, published
    orders_first = serving_scalar(project, "SELECT count(*) FROM fct_orders")
    set_first = _orders_and_kpis(project)
    next_day(project.base_dir / "sources" / "shop.sqlite", fraction=0.05)
    second = run_pipeline(project)
    orders_second = serving_scalar(project, "SELECT count(*) FROM fct_orders")
    assert orders_second > orders_first
    # an earlier published set stays readable
    at = cli(project, "query", "--at", first.run_id, "select count(*) as n from fct_orders")
    assert at.returncode == 0 and str(orders_first) in at.stdout.split(), at.stdout
    assert serving_scalar(project, "SELECT count(*) FROM fct_orders", at=second.run_id) == (
        orders_second
    )
    # roll back: the first run's marts are published again, all of them in one step
    rolled = cli(project, "publish", "--rollback")
    assert rolled.returncode == 0, rolled.stderr
    assert f"rolled back run {second.run_id}" in rolled.stdout
    assert published_run(project) == first.run_id
    assert _orders_and_kpis(project) == set_first
    # nothing older to go back to
    again = cli(project, "publish", "--rollback")
    assert again.returncode == 1 and "nothing to roll back to" in again.stderr
    unknown = cli(project, "query", "--at", "no-such-run", "select 1")
    assert unknown.returncode == 1 and "published nothing" in unknown.stderr
    # the next publish goes on from there
    assert run_pipeline(project, stages=("build", "check_marts", "publish")).status == "passed"
    assert serving_scalar(project, "SELECT count(*) FROM fct_orders") == orders_second


def test_failed_dbt_build_names_the_failing_test(make_project) -> None:
    project = make_project()
    run_pipeline(project, stages=("ingest",))
    # an order line whose order does not exist
    shop_db(project, "INSERT INTO order_items VALUES (99999998, 77777777, 1, 1, 10.00, 0.00)")
    run_pipeline(project, stages=("ingest",))
    result = run_dbt(project, ["build"])
    assert not result.ok
    [failure] = [f for f in result.failures if f.startswith("test relationships")]
    assert failure.startswith(
        "test relationships(order_id -> stg_shop__orders.order_id) on stg_shop__order_items: "
        "Got 1 result, configured to fail if != 0; first failing rows: ["
    ), failure
    assert "77777777" in failure  # the orphan line's order id, from the test's own query


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
    con = project.lake.connect(lake_read_only=True)  # the marts are in the lake's _build
    con.execute(f"ATTACH '{project.build_db}' AS build (READ_ONLY)")  # staging, intermediate
    built = con.execute(
        "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
        "WHERE (database_name = 'build' AND schema_name IN ('staging', 'intermediate')) "
        "OR (database_name = 'lake' AND schema_name = '_build')"
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


def test_dbt_docs_and_the_report_open_from_disk(make_project) -> None:
    from expectations.docs_assets import external_assets

    project = make_project()
    run_pipeline(project)
    result = cli(project, "docs")
    assert result.returncode == 0, result.stderr
    site = project.warehouse_dir / "dbt" / "target"
    page = site / "static_index.html"
    assert f"dbt docs: {page} (one file: opens from disk)" in result.stdout
    assert (site / "catalog.json").exists() and (site / "manifest.json").exists()
    assert external_assets(site) == []  # dbt's site is one self-contained page
    # opened from disk, as a person would: the models are listed (manifest inlined)
    from tests.chromium import dom_after_scripts

    dom = dom_after_scripts(page)
    assert "fct_orders" in dom and "mart_daily_kpis" in dom

    # the report: every chart drawn from inline scripts, no network, nothing blank
    from tests.chromium import screenshot

    assert run_pipeline(project).nothing_new_since  # a second run in the history
    result = cli(project, "report", "-o", str(project.base_dir / "report.html"))
    assert result.returncode == 0, result.stderr
    report = project.base_dir / "report.html"
    assert f"report: {report}" in result.stdout
    text = report.read_text()
    assert "http://" not in text.split("<body>", 1)[1].split("<script>", 1)[0]
    assert "<script src" not in text and "<link" not in text
    dom = dom_after_scripts(report)
    charts = re.findall(r'<div class="chart[^"]*" id="(chart\d+)"[^>]*data-rendered="yes"', dom)
    titles = re.findall(r'data-title="([^"]+)"', dom)
    assert {
        "Daily revenue",
        "Funnel, all sessions",
        "Inventory risk per warehouse",
        "Stage seconds per run",
        "Quality gate results per run",
    } <= set(titles)
    assert len(charts) == len(titles) >= 8  # each one rendered
    assert dom.count("<svg") >= len(titles)
    for failed in ("query failed", "cannot be read", "has no column", "aggregate in the"):
        assert failed not in text  # each of the shop's declared charts has its data
    png = screenshot(report, project.base_dir / "report.png")
    from PIL import Image

    pixels = Image.open(png).convert("L")
    extrema = pixels.getextrema()
    assert extrema[0] < 100 < extrema[1]  # ink on the page, not a blank white sheet
    colours = Image.open(png).convert("RGB").getcolors(1 << 24) or []
    assert len(colours) > 50  # charts in colour, not text alone
