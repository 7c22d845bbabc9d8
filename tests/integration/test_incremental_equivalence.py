"""Days of business, each built incrementally on the day before, equal a full refresh of
the same data after every day (three in `make test`, five in `make test-slow`): every mart
and every table the build keeps (staging, intermediate), compared as multisets (EXCEPT ALL
both ways: a set would hide a doubled row)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from bench.dbt_build import restore_state, save_state
from examples.shop.shop_day import next_day
from lake.layout import BUILD
from pipeline.config import Project
from pipeline.run import run_pipeline
from pipeline.transform import build, run_dbt

# the lake snapshot a row was built from: differs between the two by construction
NOT_COMPARED = ("_lake_snapshot",)
# how each model maintained by delta reads only what changed: the change feed of the marts
# it reads, or the reviews past its watermark (the incremental staging and order facts read
# raw rows past theirs: tests/integration/test_dbt_incremental.py)
BY_DELTA = {
    "dim_customers": "ducklake_table_changes(",
    "mart_daily_kpis": "ducklake_table_changes(",
    "int_customer_products_purchased": "ducklake_table_changes(",
    "int_product_pairs": "ducklake_table_changes(",
    "fct_reviews": "where _snapshot_id > ",
    "mart_funnel": "where snapshot_id > ",
    "dim_customers_history": "where snapshot_id > ",
}


def _compiled(project: Project) -> dict[str, str]:
    target = project.warehouse_dir / "dbt" / "target" / "run_results.json"
    results = json.loads(target.read_text())["results"]
    return {r["unique_id"].split(".")[2]: r.get("compiled_code") or "" for r in results}


def _kept_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    rows = con.execute(
        f"""SELECT database_name, schema_name || '.' || table_name FROM duckdb_tables()
            WHERE (database_name = 'lake' AND schema_name = '{BUILD}')
               OR (database_name = 'incremental' AND schema_name IN ('staging', 'intermediate'))
            ORDER BY ALL"""
    ).fetchall()
    return [(db, name) for db, name in rows]


def _differences(project: Project, incremental_db: Path, snapshot: int) -> dict[str, str]:
    """Each kept table whose rows differ: the incremental build (the lake as of
    `snapshot`, the build database copied then) against the full refresh (now)."""
    con = project.lake.connect(lake_read_only=True)
    con.execute(f"ATTACH '{incremental_db}' AS incremental (READ_ONLY)")
    con.execute(f"ATTACH '{project.build_db}' AS refreshed (READ_ONLY)")
    differ, tables = {}, _kept_tables(con)
    try:
        for db, name in tables:
            if db == "lake":
                before, after = f"lake.{name} AT (VERSION => {snapshot})", f"lake.{name}"
            else:
                before, after = f"incremental.{name}", f"refreshed.{name}"
            columns = [c[0] for c in con.execute(f"DESCRIBE SELECT * FROM {after}").fetchall()]
            listed = ", ".join(f'"{c}"' for c in columns if c not in NOT_COMPARED)
            only = [
                con.execute(
                    f"SELECT count(*) FROM (SELECT {listed} FROM {a} EXCEPT ALL "
                    f"SELECT {listed} FROM {b})"
                ).fetchone()
                for a, b in ((before, after), (after, before))
            ]
            rows = con.execute(f"SELECT count(*) FROM {after}").fetchone()
            if only[0] != (0,) or only[1] != (0,):
                differ[name] = f"{only[0][0]} rows only incremental, {only[1][0]} only full"
            assert rows and (rows[0] > 0 or name.endswith("tickets")), f"{name} is empty"
    finally:
        con.close()
    assert len(tables) >= 17, tables  # 12 marts, 5 kept tables
    return differ


@pytest.mark.parametrize("days", [3, pytest.param(5, marks=pytest.mark.slow)])
def test_days_built_incrementally_equal_a_full_refresh_after_each(make_project, days) -> None:
    project = make_project(built=True)  # the first day landed and built
    shop = project.base_dir / "sources" / "shop.sqlite"
    saved = project.warehouse_dir / "before-the-refresh"
    for day in range(1, days + 1):
        # new orders, shipments, cancellations, moved and deleted customers, new reviews and
        # clicks (late ones too)
        change = next_day(shop, fraction=0.03, seed=day, cancels=3, deletes=2, reviews=30,
                          clicks=60)  # fmt: skip
        assert change["deleted"] == 2
        run_pipeline(project, stages=("ingest",))
        result = build(project)
        assert result.ok, result.failures
        compiled = _compiled(project)
        for model, reads_changes in BY_DELTA.items():  # the changes, not the whole history
            assert reads_changes in compiled[model], (day, model)
        # the data tests of incremental models checked what changed (and keys it duplicates)
        assert re.search(
            r"where \(order_item_id\) in \(select order_item_id from "
            r'"lake"."_build"."fct_order_items" where snapshot_id > \d+\)',
            compiled["unique_fct_order_items_order_item_id"],
        ), day
        con = project.lake.connect(lake_read_only=True)
        snapshot = con.execute("SELECT max(snapshot_id) FROM ducklake_snapshots('lake')")
        built_at = int(snapshot.fetchone()[0])  # type: ignore[index]
        con.close()
        save_state(project, saved)
        incremental_db = project.warehouse_dir / f"incremental-day{day}.duckdb"
        shutil.copy(project.build_db, incremental_db)
        refresh = run_dbt(project, ["run", "--full-refresh"])
        assert refresh.ok, refresh.failures
        assert _differences(project, incremental_db, built_at) == {}, f"day {day}"
        restore_state(project, saved)  # the next day builds on the incremental tables
