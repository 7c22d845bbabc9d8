"""Each kind of bad batch fails the raw gate with the right message; the batch leaves the
raw table in one transaction (staging never sees it); the published marts stay byte for
byte; the next good batch passes. (Null and duplicate keys and unknown statuses: test_gates.py.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.run import STAGES, run_pipeline
from tests.integration.helpers import (
    cli,
    published_marts,
    published_run,
    raw_rows,
    shop_db,
    table_state,
)

HEADER = "warehouse_id,sensor_id,reading_ts,temperature_c\n"


def _readings(project: Any, name: str, body: str) -> None:
    (project.base_dir / "sources" / "iot" / name).write_text(HEADER + body)


def _catalog(project: Any, empty: bool) -> None:
    path = project.base_dir / "sources" / "suppliers" / "catalog.csv"
    lines = path.read_text().splitlines(keepends=True)
    if empty:
        (path.parent / "catalog.full").write_text("".join(lines))
        path.write_text(lines[0])
    else:  # the next export is complete again (and a little different)
        path.write_text(
            (path.parent / "catalog.full").read_text() + "1;Supplier 1;SKU-999999;1.00;3\n"
        )


def _new_order(project: Any, order_id: int, shipping: float, updated: str) -> None:
    shop_db(project, "INSERT INTO orders VALUES (?, 5, 'placed', '2026-04-01 10:00:00', "
            "'EUR', ?, NULL, NULL, ?)", (order_id, shipping, updated))  # fmt: skip


SCENARIOS: dict[str, tuple[str, Callable[[Any], None], str, Callable[[Any], None]]] = {
    "out of range amount": (
        "shop.orders",
        lambda p: _new_order(p, 910001, 500.0, "2026-07-01 00:00:00"),
        "expect_column_values_to_be_between(column='shipping_amount', min_value=0, "
        "max_value=100): observed 1 unexpected",
        lambda p: shop_db(p, "UPDATE orders SET shipping_amount = 5.0, "
                          "updated_at = '2026-07-02 00:00:00' WHERE order_id = 910001"),
    ),
    "orphan foreign key": (
        "shop.order_items",
        lambda p: shop_db(p, "INSERT INTO order_items VALUES (99999997, 77777777, 1, 1, "
                          "10.00, 0.00)"),
        "expect_column_values_to_exist_in(column='order_id', table='shop__orders'): "
        "observed 1 offending rows, e.g. [{'order_item_id': 99999997, 'order_id': 77777777",
        # lines are extracted by id and never edited: the correction is a new line
        lambda p: (shop_db(p, "DELETE FROM order_items WHERE order_item_id = 99999997"),
                   shop_db(p, "INSERT INTO order_items VALUES (99999998, 1, 1, 1, 10.00, 0.00)")),
    ),
    "schema change": (
        "shop.orders",
        lambda p: (shop_db(p, "ALTER TABLE orders RENAME COLUMN shipping_amount TO shipping_fee"),
                   _new_order(p, 910002, 4.99, "2026-07-03 00:00:00")),
        "expect_table_columns_to_match_set(",
        lambda p: (shop_db(p, "ALTER TABLE orders RENAME COLUMN shipping_fee TO shipping_amount"),
                   shop_db(p, "UPDATE orders SET updated_at = '2026-07-04 00:00:00' "
                           "WHERE order_id = 910002")),
    ),
    "empty batch": (  # the supplier's export came out empty
        "suppliers.catalog",
        lambda p: _catalog(p, empty=True),
        "expect_table_row_count_to_be_between(min_value=1): observed 0",
        lambda p: _catalog(p, empty=False),
    ),
    "stale source": (
        "iot.sensor_readings",
        lambda p: _readings(p, "sensor_readings_2019_01.csv",
                            "1,cold-1-1,2019-01-01 00:00:00,4.1\n"),
        "expect_column_max_to_be_recent(column='reading_ts', max_age_hours=8760): "
        "observed 1 offending rows",
        lambda p: _readings(p, "sensor_readings_2019_01.csv",
                            "1,cold-1-1,2026-05-01 00:00:00,4.1\n"),
    ),
}  # fmt: skip


def test_each_kind_of_bad_batch_fails_the_raw_gate_and_its_fix_passes(make_project) -> None:
    # one project, one kind after the other (a run from scratch per kind cost 4 more full
    # runs): each fix's batch passes the raw gate, and the last fix's run builds and
    # publishes all of them; the orders' changes are stamped later each time, past the
    # incremental extract's watermark
    project = make_project(built=True)  # as the session's first run left it
    last = list(SCENARIOS)[-1]
    for kind, (target, break_it, expected, fix_it) in SCENARIOS.items():
        source, table = target.split(".")
        published = published_marts(project)
        raw_before = raw_rows(project, source, table)

        break_it(project)
        result = cli(project, "run")
        assert result.returncode == 1, (kind, result.stdout + result.stderr)
        [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("error: ")]
        bad = table_state(project, source, table).batches[-1]
        assert line.startswith("error: check_raw failed: raw gate failed"), (kind, line)
        assert f"{target} batch {bad.load_id}: {expected}" in line, (kind, line)
        assert bad.gate == "failed" and not bad.in_raw_zone and bad.quarantine_table, kind
        assert raw_rows(project, source, table) == raw_before, kind  # staging reads none
        assert published_marts(project) == published, kind  # BI keeps the last good marts

        fix_it(project)
        record = run_pipeline(project, stages=STAGES if kind == last else ("ingest", "check_raw"))
        assert record.status == "passed", (kind, record.error)
        good = table_state(project, source, table).batches[-1]
        assert good.gate == "passed" and good.in_raw_zone, kind
    # the last run built every fixed batch and published it
    assert published_run(project) == record.run_id
    assert published_marts(project)[1]["fct_orders"] != published[1]["fct_orders"]
