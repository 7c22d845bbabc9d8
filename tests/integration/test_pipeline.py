"""The whole pipeline, on the local lake and on a real S3 server (SeaweedFS)."""

from __future__ import annotations

import json

import duckdb
import pytest

from lake import all_states, layout
from pipeline.config import Project
from pipeline.run import run_pipeline
from tests.conftest import ProjectFactory
from tests.integration.helpers import raw_rows, serving_scalar


@pytest.fixture
def project(
    lake_kind: str, make_project: ProjectFactory, request: pytest.FixtureRequest
) -> Project:
    if lake_kind == "local":
        return make_project()
    bucket, env = request.getfixturevalue("s3_bucket")
    return make_project(lake_url=f"s3://{bucket}/shop", env=env)


def test_full_run_lands_gates_builds_and_publishes(project: Project, shop_sources) -> None:
    src_dir, counts = shop_sources
    record = run_pipeline(project)

    assert record.status == "passed"
    assert [s.name for s in record.stages] == [
        "ingest",
        "check_raw",
        "build",
        "check_marts",
        "publish",
    ]
    assert all(s.status == "passed" for s in record.stages)
    for table, n in counts.items():
        assert raw_rows(project, "shop", table) == n, table
    build = record.stage("build")
    assert build is not None and build.details["models"] == 6
    assert build.details["tests_passed"] > 10
    raw_gate = record.stage("check_raw")
    assert raw_gate is not None and raw_gate.details["expectations"] >= 8

    # the published mart reconciles with the source files, row for row
    expected = duckdb.sql(
        f"""
        SELECT (SELECT sum(quantity * unit_price::DECIMAL(12, 2))
                       - sum(discount_amount::DECIMAL(12, 2))
                FROM read_csv('{src_dir}/order_items.csv'))
             + (SELECT sum(shipping_amount::DECIMAL(12, 2))
                FROM read_csv('{src_dir}/orders/*.csv'))
        """
    ).fetchone()
    assert expected is not None
    assert serving_scalar(project, "SELECT count(*) FROM fct_orders") == counts["orders"]
    assert serving_scalar(project, "SELECT sum(net_amount) FROM fct_orders") == expected[0]
    assert serving_scalar(project, "SELECT run_id FROM _lakehouse_publication") == record.run_id

    # the run left a machine-readable record in the lake
    saved = json.loads(project.lake.storage.read_bytes(layout.run_key(record.run_id)) or b"{}")
    assert saved["status"] == "passed"
    assert saved["stages"][0]["details"]["rows"] == sum(counts.values())

    # lineage columns on every raw row
    con = project.lake.connect()
    lineage = con.execute(
        "SELECT count(*) FILTER (WHERE _load_id IS NULL OR _source_file IS NULL "
        "OR _ingested_at IS NULL), count(DISTINCT _source_file) FROM read_parquet(?)",
        [project.lake.raw_glob_uri("shop", "orders")],
    ).fetchone()
    con.close()
    assert lineage == (0, 3)


def test_rerun_without_new_data_lands_nothing(project: Project, shop_sources) -> None:
    _, counts = shop_sources
    run_pipeline(project)
    before = {(s.source, s.table): len(s.batches) for s in all_states(project.lake.storage)}
    again = run_pipeline(project)
    ingest = again.stage("ingest")
    assert ingest is not None
    assert all(t["batches"] == 0 for t in ingest.details["tables"].values())
    after = {(s.source, s.table): len(s.batches) for s in all_states(project.lake.storage)}
    assert before == after
    assert raw_rows(project, "shop", "orders") == counts["orders"]


def test_a_new_file_is_one_new_batch(project: Project, shop_sources) -> None:
    _, counts = shop_sources
    run_pipeline(project, stages=("ingest",))
    new = project.base_dir / "sources" / "shop" / "orders" / "orders_2026_04.csv"
    new.write_text(
        "order_id,customer_id,status,order_ts,currency,shipping_amount\n"
        "900001,1,placed,2026-04-01T10:00:00+02:00,EUR,4.99\n"
    )
    record = run_pipeline(project, stages=("ingest",), only=["shop.orders"])
    ingest = record.stage("ingest")
    assert ingest is not None and ingest.details["tables"]["shop.orders"]["batches"] == 1
    assert raw_rows(project, "shop", "orders") == counts["orders"] + 1
