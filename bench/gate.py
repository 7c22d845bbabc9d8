"""gate: a quality gate of 20 expectations over a 10M-row mart (GX, pushed down to
DuckDB as SQL) vs the same checks written by hand as one DuckDB query."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import duckdb

from bench.common import measure, median_run, write_result
from expectations import load_suites, run_gate
from lake.duck import connection_config

ROWS = int(os.environ.get("BENCH_GATE_ROWS", "10000000"))
SUITE = """
name: fct_orders
target: fct_orders
expectations:
- type: expect_table_row_count_to_be_between
  kwargs: {min_value: 1}
- type: expect_table_columns_to_match_set
  kwargs:
    column_set: [order_id, customer_id, order_status, currency, line_count, gross_amount,
      discount_amount,
      net_amount, ordered_at, sku]
- type: expect_column_values_to_not_be_null
  kwargs: {column: order_id}
- type: expect_column_values_to_not_be_null
  kwargs: {column: customer_id}
- type: expect_column_values_to_not_be_null
  kwargs: {column: ordered_at}
- type: expect_column_values_to_not_be_null
  kwargs: {column: net_amount}
- type: expect_column_values_to_be_unique
  kwargs: {column: order_id}
- type: expect_column_values_to_be_between
  kwargs: {column: net_amount, min_value: 0}
- type: expect_column_values_to_be_between
  kwargs: {column: line_count, min_value: 0, max_value: 50}
- type: expect_column_values_to_be_between
  kwargs: {column: gross_amount, min_value: 0, max_value: 100000}
- type: expect_column_values_to_be_between
  kwargs: {column: discount_amount, min_value: 0}
- type: expect_column_values_to_be_in_set
  kwargs:
    column: order_status
    value_set: [placed, shipped, delivered, cancelled, returned]
- type: expect_column_values_to_be_in_set
  kwargs:
    column: currency
    value_set: [EUR, USD, GBP]
- type: expect_column_pair_values_a_to_be_greater_than_b
  kwargs: {column_A: gross_amount, column_B: discount_amount, or_equal: true}
- type: expect_column_max_to_be_between
  kwargs: {column: line_count, max_value: 50}
- type: expect_column_mean_to_be_between
  kwargs: {column: net_amount, min_value: 0, max_value: 10000}
- type: expect_column_values_to_match_regex
  kwargs: {column: sku, regex: 'SKU-[0-9]{6}'}
- type: expect_column_values_to_exist_in
  kwargs: {column: customer_id, table: dim_customers}
- type: expect_compound_columns_to_be_unique
  kwargs:
    column_list: [order_id, customer_id]
- type: expect_column_values_to_be_of_type
  kwargs: {column: ordered_at, type_: TIMESTAMP}
"""

HAND_WRITTEN = """
WITH f AS (SELECT * FROM fct_orders)
SELECT
  count(*) >= 1,
  count(*) FILTER (WHERE order_id IS NULL) = 0,
  count(*) FILTER (WHERE customer_id IS NULL) = 0,
  count(*) FILTER (WHERE ordered_at IS NULL) = 0,
  count(*) FILTER (WHERE net_amount IS NULL) = 0,
  count(DISTINCT order_id) = count(order_id),
  count(*) FILTER (WHERE net_amount < 0) = 0,
  count(*) FILTER (WHERE line_count NOT BETWEEN 0 AND 50) = 0,
  count(*) FILTER (WHERE gross_amount NOT BETWEEN 0 AND 100000) = 0,
  count(*) FILTER (WHERE discount_amount < 0) = 0,
  count(*) FILTER (WHERE order_status NOT IN ('placed', 'shipped', 'delivered',
                                              'cancelled', 'returned')) = 0,
  count(*) FILTER (WHERE currency NOT IN ('EUR', 'USD', 'GBP')) = 0,
  count(*) FILTER (WHERE gross_amount < discount_amount) = 0,
  max(line_count) <= 50,
  avg(net_amount) BETWEEN 0 AND 10000,
  count(*) FILTER (WHERE NOT regexp_full_match(sku, 'SKU-[0-9]{6}')) = 0,
  (SELECT count(*) FROM fct_orders o ANTI JOIN dim_customers c USING (customer_id)) = 0,
  (SELECT count(*) FROM (SELECT order_id, customer_id FROM fct_orders
                         GROUP BY ALL HAVING count(*) > 1)) = 0,
  (SELECT any_value(typeof(ordered_at)) FROM fct_orders) = 'TIMESTAMP'
FROM f
"""


def _build(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute(f"""CREATE TABLE fct_orders AS SELECT
        range AS order_id, range % 100000 AS customer_id,
        ['placed', 'shipped', 'delivered', 'cancelled', 'returned'][1 + range % 5] AS order_status,
        'EUR' AS currency, (range % 7)::INT AS line_count,
        (range % 1000)::DECIMAL(12, 2) AS gross_amount, 0::DECIMAL(12, 2) AS discount_amount,
        (range % 1000)::DECIMAL(12, 2) AS net_amount,
        TIMESTAMP '2026-01-01' + to_seconds(range % 7776000) AS ordered_at,
        'SKU-' || lpad((range % 999999)::VARCHAR, 6, '0') AS sku
        FROM range({ROWS})""")
    con.execute("CREATE TABLE dim_customers AS SELECT range AS customer_id FROM range(100000)")
    con.close()


def gx_gate(db: str, suites: str, **_: Any) -> dict[str, Any]:
    """The gate as a pipeline run does it, Data Docs included (GX's import is measured on
    its own: `gx_import_s`)."""
    result = run_gate("marts", load_suites(Path(suites), "marts"), Path(db),
                      {"fct_orders": [("", "main", "fct_orders")]},
                      dict(connection_config()),
                      docs_dir=Path(db).parent / "data_docs")  # fmt: skip
    assert result.docs is not None and result.docs.exists()
    assert len(result.results) == 20, len(result.results)
    assert result.ok, [r.describe() for r in result.blocking]
    return {"expectations": len(result.results)}


def hand_written(db: str, **_: Any) -> dict[str, Any]:
    con = duckdb.connect(db, read_only=True)
    row = con.execute(HAND_WRITTEN).fetchone()
    con.close()
    assert row is not None and all(row), row
    return {"checks": len(row)}


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as tmp:
        db = Path(tmp) / "marts.duckdb"
        _build(db)
        suites = Path(tmp) / "expectations"
        (suites / "suites" / "marts").mkdir(parents=True)
        (suites / "suites" / "marts" / "fct_orders.yml").write_text(SUITE)
        args = {"db": str(db), "suites": str(suites)}
        refs, vals = [], []
        for _ in range(int(os.environ.get("BENCH_REPEAT", "3"))):
            refs.append(measure("bench.gate:hand_written", args))
            vals.append(measure("bench.gate:gx_gate", args))
    ref, val = median_run(refs), median_run(vals)
    return write_result("gate", val, ref, rows=ROWS, expectations=20,
                        gx_import_s=_gx_import_seconds(), data_docs=True)  # fmt: skip


def _gx_import_seconds() -> float:
    """What importing Great Expectations costs a fresh process (paid once per gate run)."""
    import subprocess
    import sys

    code = "import time; t = time.perf_counter(); import great_expectations; "
    code += "print(time.perf_counter() - t)"
    runs = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.strip())
        for _ in range(3)
    ]  # fmt: skip
    return round(sorted(runs)[1], 2)
