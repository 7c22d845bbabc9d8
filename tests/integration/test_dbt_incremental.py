"""Incremental models read only new batches and end up where a full refresh does; the
customer history (SCD2) and the order status history follow the source's changes."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import duckdb

from examples.shop.shop_day import next_day
from pipeline.config import Project
from pipeline.run import run_pipeline
from pipeline.serve import build_snapshot
from pipeline.transform import build, run_dbt

INCREMENTAL = ("stg_shop__orders", "stg_shop__order_items", "fct_order_status_history",
               "fct_orders", "fct_order_items")  # fmt: skip
COMPARED = (*INCREMENTAL, "stg_shop__customers", "dim_customers", "dim_customers_history",
            "mart_daily_kpis")  # fmt: skip


def _warehouse(project: Project, build_db: Path | None = None) -> duckdb.DuckDBPyConnection:
    """The marts (lake._build, `USE`d) and staging (`build.staging`), read-only."""
    con = project.lake.connect(lake_read_only=True)
    con.execute(f"ATTACH '{build_db or project.build_db}' AS build (READ_ONLY)")
    con.execute("USE lake._build")
    return con


def _tables(project: Project, build_db: Path, snapshot: int) -> dict[str, Counter[tuple]]:
    """The compared models: staging from a copy of the build database, the marts as of
    a lake snapshot; each as a multiset of rows (a set would hide a duplicated row)."""
    con = _warehouse(project, build_db)
    try:
        out = {}
        for name in COMPARED:
            relation = (f"build.staging.{name}" if name.startswith("stg_")
                        else f"{name} AT (VERSION => {snapshot})")  # fmt: skip
            columns = [c[0] for c in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
            # (the lake snapshot a row was built from differs between the two by construction)
            listed = ", ".join(f'"{c}"' for c in columns if c != "_lake_snapshot")
            out[name] = Counter(con.execute(f"SELECT {listed} FROM {relation}").fetchall())
        return out
    finally:
        con.close()


def _compiled(project: Project, model: str) -> str:
    results = json.loads((project.warehouse_dir / "dbt/target/run_results.json").read_text())
    node = next(r for r in results["results"] if r["unique_id"].endswith(f".{model}"))
    return str(node["compiled_code"])


def _sql(project: Project, sql: str) -> list[tuple]:
    con = _warehouse(project)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_incremental_build_after_a_new_day_equals_a_full_refresh_on_s3(
    make_project, s3_bucket: tuple[str, dict[str, str]]
) -> None:
    # (on a local lake, five days and every table: test_incremental_equivalence.py)
    bucket, s3env = s3_bucket
    project = make_project(lake_url=f"s3://{bucket}/incremental", env=s3env)
    run_pipeline(project, stages=("ingest",))
    first = build(project)
    assert first.ok, first.failures
    # the first build read every batch
    assert "snapshot_id >" not in _compiled(project, "stg_shop__orders")
    orders_before = _sql(project, "SELECT count(*) FROM fct_orders")[0][0]
    # every source is fresh right after an ingest (freshness reads _ingested_at)
    freshness = run_dbt(project, ["source", "freshness"])
    assert freshness.ok, freshness.output[-2000:]
    sources = json.loads((project.warehouse_dir / "dbt/target/sources.json").read_text())
    states = {r["unique_id"].split(".", 2)[2]: r["status"] for r in sources["results"]}
    assert len(states) == 11 and set(states.values()) == {"pass"}, states

    day = next_day(project.base_dir / "sources" / "shop.sqlite", fraction=0.02)
    run_pipeline(project, stages=("ingest",))
    second = build(project)
    assert second.ok, second.failures
    # ...the next one only the rows committed since: the watermark is a snapshot id, written
    # as a literal, so DuckLake skips every data file committed before it
    for model in ("stg_shop__orders", "stg_shop__order_items", "fct_order_status_history",
                  "base_shop__customers_current"):  # fmt: skip
        sql = _compiled(project, model)
        assert re.search(r"snapshot_id > \d+", sql), model
        assert "_ingested_at >" not in sql, model  # never the clock
    assert "order_id in (select order_id from changed_orders)" in _compiled(project, "fct_orders")
    assert _sql(project, "SELECT count(*) FROM fct_orders")[0][0] == orders_before + day["orders"]

    # the order status history: the shipped orders were seen placed, then shipped
    shipped = _sql(
        project,
        """
        SELECT count(*) FROM fct_orders o
        JOIN fct_order_status_history h USING (order_id)
        WHERE o.order_status = 'shipped' AND o.statuses_seen = 2 AND h.order_status = 'placed'""",
    )
    assert shipped[0][0] == day["shipped"]

    # SCD2: the customers who moved have two versions, the old one closed by the new one
    history = _sql(
        project,
        """
        SELECT count(DISTINCT customer_id),
               count(*) FILTER (WHERE NOT is_current AND valid_to IS NULL),
               count(*) FILTER (WHERE is_current AND valid_to IS NOT NULL)
        FROM dim_customers_history h
        WHERE customer_id IN (SELECT customer_id FROM dim_customers_history WHERE version = 2)""",
    )
    assert history[0] == (day["moved"], 0, 0)
    closed = _sql(
        project,
        """
        SELECT count(*) FROM dim_customers_history old
        JOIN dim_customers_history new
          ON new.customer_id = old.customer_id AND new.version = old.version + 1
        WHERE old.valid_to = new.valid_from AND old.country_code <> new.country_code
          AND new.country_code = (SELECT country_code FROM dim_customers d
                                  WHERE d.customer_id = new.customer_id)""",
    )
    assert closed[0][0] == day["moved"]
    # customers not changed: one version, however many dumps carried them
    assert _sql(project, "SELECT max(version) FROM dim_customers_history")[0][0] == 2

    copy = project.warehouse_dir / "incremental.duckdb"
    shutil.copy(project.build_db, copy)
    incremental = _tables(project, copy, build_snapshot(project))
    refresh = run_dbt(project, ["build", "--full-refresh"])
    assert refresh.ok, refresh.failures
    full = _tables(project, project.build_db, build_snapshot(project))
    for name in COMPARED:
        assert incremental[name] == full[name], f"{name} differs after a full refresh"
        assert incremental[name], name
