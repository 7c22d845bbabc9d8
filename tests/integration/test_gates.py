"""Failing gates stop the run with a message that names what failed; nothing is published."""

from __future__ import annotations

import pytest

from pipeline.errors import StageFailed
from pipeline.run import run_pipeline
from tests.integration.helpers import (
    cli,
    lake_sql,
    published_marts,
    raw_rows,
    serving_scalar,
    shop_db,
    shop_rows,
    table_state,
)


def test_bad_raw_batch_is_quarantined_and_the_published_marts_stay(make_project) -> None:
    project = make_project(built=True)  # as the session's first run left it
    published = published_marts(project)
    orders_before = serving_scalar(project, "SELECT count(*) FROM fct_orders")

    # the application writes bad orders; the incremental extract picks them up
    for row in [
        (900002, 5, "placed"),  # fine
        (900001, 5, "placed"),
        (900001, 6, "placed"),  # duplicate key in the batch
        (None, 7, "lost"),  # null key, unknown status
    ]:
        shop_db(project, "INSERT INTO orders (order_id, customer_id, status, ordered_at, "
                "currency, shipping_amount, updated_at) VALUES (?, ?, ?, "
                "'2026-04-01 10:00:00', 'EUR', 4.99, '2026-06-01 00:00:00')", row)  # fmt: skip
    # the CLI: one line naming table, batch, expectations, observed values; exit 1
    result = cli(project, "run")
    assert result.returncode == 1
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, result.stderr[-3000:]
    message = lines[0]
    assert "Traceback" not in result.stderr
    state = table_state(project, "shop", "orders")
    bad = state.batches[-1]
    assert state.watermark == bad.watermark_from  # set back to where the batch started
    assert message.startswith("error: check_raw failed: raw gate failed")
    assert f"shop.orders batch {bad.load_id}: " in message  # the table and the batch
    assert "expect_column_values_to_not_be_null(column='order_id')" in message
    assert "expect_column_values_to_be_unique(column='order_id')" in message
    assert "expect_column_values_to_be_in_set(column='status'" in message
    assert "'lost'" in message  # a sample of the failing values
    # only the new batch was checked (4 new rows and the lag window's re-read)
    assert 4 <= bad.rows < 100 and f"of {bad.rows} rows" in message
    assert published_marts(project) == published  # BI still reads the last good marts

    # the batch left the raw table (staging never reads it) for its own quarantine table,
    # in one transaction; status and `quarantine list` show it
    assert bad.gate == "failed" and bad.landed_rows == 0 and not bad.in_raw_zone
    assert bad.reason and "expect_column_values_to_be_unique" in bad.reason
    held = lake_sql(project, f"SELECT count(*) FROM lake._quarantine.{bad.quarantine_table}")
    assert held == [(bad.rows,)]
    assert all(b.gate == "passed" for b in state.batches[:-1])
    assert raw_rows(project, "shop", "orders") == shop_rows(project, "orders") - 4
    status = cli(project, "status")
    assert "1 batch(es) FAILED the raw gate" in status.stdout
    listed = cli(project, "quarantine", "list")
    assert bad.load_id in listed.stdout and "shop.orders" in listed.stdout

    # the source is fixed and re-ingested: the run passes and publishes the good orders
    shop_db(project, "DELETE FROM orders WHERE order_id IS NULL OR customer_id = 6")
    shop_db(project, "UPDATE orders SET updated_at = '2026-06-02 00:00:00' WHERE order_id > 900000")
    record = run_pipeline(project)
    assert record.status == "passed"
    assert serving_scalar(project, "SELECT count(*) FROM fct_orders") == orders_before + 2


def test_a_quarantined_batch_comes_back_whole_when_only_its_bad_row_is_fixed(
    make_project,
) -> None:
    """1,000 new orders with one bad row: the batch is quarantined and the watermark set
    back, so fixing only the bad row brings all 1,000 orders to the marts."""
    project = make_project(built=True)  # as the session's first run left it
    orders_before = serving_scalar(project, "SELECT count(*) FROM fct_orders")
    import sqlite3

    con = sqlite3.connect(project.base_dir / "sources" / "shop.sqlite")
    con.executemany(
        "INSERT INTO orders (order_id, customer_id, status, ordered_at, currency, "
        "shipping_amount, updated_at) VALUES (?, 5, ?, '2026-04-01 10:00:00', 'EUR', 4.99, "
        "'2026-06-01 00:00:00')",
        [(800000 + i, "lost" if i == 500 else "placed") for i in range(1000)],
    )
    con.commit()
    con.close()
    with pytest.raises(StageFailed, match="expect_column_values_to_be_in_set"):
        run_pipeline(project)
    assert serving_scalar(project, "SELECT count(*) FROM fct_orders") == orders_before
    # the application fixes the one bad row; its updated_at moves, the others' do not
    shop_db(project, "UPDATE orders SET status = 'placed', updated_at = '2026-06-01 00:00:01' "
            "WHERE order_id = 800500")  # fmt: skip
    record = run_pipeline(project)
    assert record.status == "passed", record.error
    assert serving_scalar(project, "SELECT count(*) FROM fct_orders") == orders_before + 1000


def test_failing_mart_gate_publishes_nothing(make_project) -> None:
    project = make_project(built=True)  # as the session's first run left it
    published = published_marts(project)

    # a discount larger than the line: negative revenue
    shop_db(project, "INSERT INTO order_items VALUES (99999999, 1, 1, 1, 10.00, 500.00)")
    with pytest.raises(StageFailed) as info:
        run_pipeline(project)
    message = str(info.value)
    assert message.startswith("check_marts failed: marts gate failed")
    assert "fct_orders: expect_column_pair_values_a_to_be_greater_than_b" in message
    assert "expect_column_values_to_be_between(column='net_amount'" in message
    assert published_marts(project) == published


def test_check_command_runs_a_gate_by_hand(make_project) -> None:
    project = make_project(built=True)  # as the session's first run left it
    result = cli(project, "check", "marts")
    assert result.returncode == 0, result.stderr
    assert "marts gate passed" in result.stdout
    assert result.stdout.count("ok  ") >= 7


def test_suggested_suites_load_and_hold_on_the_data_they_came_from(make_project, tmp_path) -> None:
    import shutil

    from expectations import load_suites
    from pipeline.gates import check_marts, suggest_suite
    from pipeline.serve import build_snapshot

    project = make_project(built=True)  # as the session's first run left it
    suites = tmp_path / "own_expectations"
    shutil.copytree(project.expectations_dir, suites)
    # point a copy of the project at its own suites folder
    text = project.path.read_text().replace(str(project.expectations_dir), str(suites))
    project.path.write_text(text)
    from pipeline.config import load_project

    project = load_project(project.path, env={})
    for target in ("vendor.reviews", "dim_customers"):
        with pytest.raises(Exception, match="exists: edit it, or pass --force"):
            suggest_suite(project, target)
        _, _, printed = suggest_suite(project, target, write=False)  # --print: no write
        path, n, text = suggest_suite(project, target, force=True)
        assert n >= 5 and path.read_text() == text and text.startswith("# Suggested by")
        assert printed.split("\n", 1)[1] == text.split("\n", 1)[1]
    raw = {s.target: s for s in load_suites(suites, "raw")}
    kinds = {e.type for e in raw["vendor.reviews"].expectations}
    assert {"expect_column_values_to_be_unique", "expect_column_values_to_be_between",
            "expect_column_values_to_not_be_null"} <= kinds  # fmt: skip
    # the suggested dim_customers suite holds on the mart
    result = check_marts(project, build_snapshot(project))
    dims = [r for r in result.results if r.target == "dim_customers"]
    assert len(dims) >= 5 and all(r.success for r in dims), [r.describe() for r in dims]
    # no expectation on the lakehouse's own bookkeeping (_snapshot_id, _lake_snapshot, ...):
    # it grows with every run, so a range on it would fail the next day
    marts = {s.target: s for s in load_suites(suites, "marts")}
    proposed = raw["vendor.reviews"].expectations + marts["dim_customers"].expectations
    assert not [e for e in proposed if str(e.kwargs.get("column", "")).startswith("_")]
    # with tolerances, not the values seen: the next day's batch passes them
    ranges = [e for e in raw["vendor.reviews"].expectations
              if e.type == "expect_column_values_to_be_between"]  # fmt: skip
    assert ranges and all(e.kwargs["max_value"] > e.kwargs["min_value"] for e in ranges)
    from examples.shop.shop_day import next_day

    next_day(project.base_dir / "sources" / "shop.sqlite", fraction=0.05, reviews=50)
    again = run_pipeline(project)
    assert again.status == "passed" and again.quarantined == [], again.quarantined


def test_data_docs_are_built_for_both_gates_with_every_asset_local(make_project) -> None:
    import re

    from expectations.docs_assets import external_assets

    project = make_project()
    record = run_pipeline(project)
    for gate in ("raw", "marts"):
        stage = record.stage(f"check_{gate}")
        assert stage is not None
        site = project.warehouse_dir / "data_docs" / gate
        assert stage.details["data_docs"] == str(site / "index.html")
        pages = list(site.rglob("*.html"))
        assert len(pages) > 3  # index, suites, validation results
        assert external_assets(site) == []  # no stylesheet, script or image needs the network
        for page in pages:  # and every local one is there
            text = page.read_text()
            for ref in re.findall(r"<(?:script|link|img)\b[^>]*?(?:src|href)=\"([^\"#]+)\"", text):
                if not ref.startswith(("http://", "https://", "data:")):
                    assert (page.parent / ref).resolve().exists(), (page, ref)
            assert "integrity=" not in text and "crossorigin=" not in text
    index = (project.warehouse_dir / "data_docs" / "raw" / "index.html").read_text()
    assert "raw__shop__orders" in index and "raw__vendor__reviews" in index
    # opened from disk, its scripts run: bootstrap-table draws the validation list
    from tests.chromium import dom_after_scripts

    dom = dom_after_scripts(project.warehouse_dir / "data_docs" / "raw" / "index.html")
    assert "fixed-table-container" not in index and "fixed-table-container" in dom
    # a warning shows as a warning: the example's unreadable PDF fails a `severity: warning`
    # expectation on finance.invoices, and the gate passed
    warned = re.findall(r"\{'validation_success': (?:(?!\{'validation_success').)*?"
                        r"'_expectation_suite_name_sort': 'raw__finance__invoices'"
                        r"(?:(?!\{'validation_success').)*", index, flags=re.S)  # fmt: skip
    assert warned and all("'_validation_success_text': 'Warning'" in row for row in warned)
    assert all("fa-exclamation-triangle text-warning" in row for row in warned)
    page = re.search(r"'_table_row_link_path': '(validations/raw__finance__invoices/[^']+)'",
                     warned[0])  # fmt: skip
    shown = (site.parent / "raw" / page[1]).read_text() if page else ""
    assert "Warning (did not block the gate)" in shown
    assert "'_validation_success_text': 'Failed'" not in index  # nothing else failed

    # the next run's results are added: the Data Docs keep the runs before it
    from examples.shop.shop_day import next_day

    next_day(project.base_dir / "sources" / "shop.sqlite", fraction=0.01)
    assert run_pipeline(project).status == "passed"
    index = (project.warehouse_dir / "data_docs" / "raw" / "index.html").read_text()
    orders = set(re.findall(r"'_table_row_link_path': '(validations/raw__shop__orders/[^']+)'",
                            index))  # fmt: skip
    assert len(orders) == 2 and all((site.parent / "raw" / p).exists() for p in orders)
    marts = (project.warehouse_dir / "data_docs" / "marts" / "index.html").read_text()
    assert len(set(re.findall(r"'_table_row_link_path': '(validations/fct_orders/[^']+)'",
                              marts))) == 2  # fmt: skip
