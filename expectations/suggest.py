"""Bootstrap a suite from the data: profile a table in DuckDB and propose expectations
(keys unique and not null, ranges and small sets, column types) as a YAML suite for a
human to edit. Profiling is SQL (SUMMARIZE and a few aggregates), not pandas.

Proposals carry tolerances, not the exact values seen, so that tomorrow's batch passes
when it is like today's: ranges are widened (`widened`), value sets hold for `mostly`
99% of the rows and only warn."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb
import yaml

MAX_SET = 12  # text columns with at most this many values get a value set
RANGE_MARGIN = 0.5  # observed ranges widened by half their span on each side
SET_MOSTLY = 0.99  # a value set holds for 99% of the rows
# bookkeeping the lakehouse writes (columns named "_...": batch, snapshot, ingest time)
# grows by design with every run: a range on it fails tomorrow, so none is proposed
SKIP = ("load_date",)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def propose(con: duckdb.DuckDBPyConnection, relation: str) -> list[dict[str, Any]]:
    """Expectations that hold for `relation` now (a table or view name)."""
    summary = con.execute(f"SUMMARIZE {relation}").fetchall()
    cols = [d[0] for d in con.execute(f"SUMMARIZE {relation}").description or []]
    rows_row = con.execute(f"SELECT count(*) FROM {relation}").fetchone()
    rows = int(rows_row[0]) if rows_row else 0
    out: list[dict[str, Any]] = [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}
    ]
    for record in summary:
        col = dict(zip(cols, record, strict=True))
        name, kind = col["column_name"], col["column_type"]
        nested = kind.startswith(("STRUCT", "MAP", "JSON")) or kind.endswith("[]")
        if name in SKIP or name.startswith("_") or nested:
            continue
        nulls = float(col["null_percentage"] or 0)
        if nulls == 0:
            out.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": name}})
        distinct = con.execute(f"SELECT count(DISTINCT {_q(name)}) FROM {relation}").fetchone()
        n_distinct = int(distinct[0]) if distinct else 0
        if (
            rows
            and n_distinct == rows
            and nulls == 0
            and (name.endswith("_id") or name == "id" or kind in ("VARCHAR",))
        ):
            out.append({"type": "expect_column_values_to_be_unique", "kwargs": {"column": name}})
        if kind in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "DOUBLE", "FLOAT") \
                or kind.startswith("DECIMAL"):  # fmt: skip
            low, high = con.execute(
                f"SELECT min({_q(name)})::DOUBLE, max({_q(name)})::DOUBLE FROM {relation}"
            ).fetchone() or (None, None)
            if low is not None and not (name.endswith("_id") and n_distinct > MAX_SET):
                integral = not kind.startswith(("DOUBLE", "FLOAT", "DECIMAL"))
                low, high = widened(low, high, integral)
                out.append({"type": "expect_column_values_to_be_between",
                            "kwargs": {"column": name, "min_value": low,
                                       "max_value": high}})  # fmt: skip
        elif kind == "VARCHAR" and 0 < n_distinct <= MAX_SET and n_distinct < rows:
            values = [r[0] for r in con.execute(
                f"SELECT DISTINCT {_q(name)} FROM {relation} WHERE {_q(name)} IS NOT NULL "
                "ORDER BY 1").fetchall()]  # fmt: skip
            # a new category tomorrow is a warning on a few rows, not a quarantined batch
            out.append({"type": "expect_column_values_to_be_in_set", "severity": "warning",
                        "kwargs": {"column": name, "value_set": values,
                                   "mostly": SET_MOSTLY}})  # fmt: skip
        elif kind.startswith(("TIMESTAMP", "DATE")):
            out.append({"type": "expect_column_values_to_be_of_type",
                        "kwargs": {"column": name, "type_": kind}})  # fmt: skip
    return out


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def widened(low: float, high: float, integral: bool) -> tuple[int | float, int | float]:
    """The observed range with room for the next batch: half the observed span (at least
    10% of the bound) on each side; a bound of zero or more stays at zero or more (amounts,
    counts); integers stay integers."""
    import math

    span = high - low
    below = max(span * RANGE_MARGIN, abs(low) * 0.1)
    above = max(span * RANGE_MARGIN, abs(high) * 0.1)
    new_low = low - below
    if low >= 0:
        new_low = max(new_low, 0.0)
    new_high = high + above
    if integral:
        return math.floor(new_low), math.ceil(new_high)
    return _num(round(new_low, 6)), _num(round(new_high, 6))


def suite_yaml(name: str, target: str, expectations: list[dict[str, Any]], rows: int) -> str:
    header = (
        f"# Suggested by `lakehouse expectations suggest {target}` on "
        f"{datetime.now(UTC):%Y-%m-%d} from {rows:,} rows.\n"
        "# Every expectation held for that data, with room: ranges are widened by half their\n"
        "# span, value sets hold for 99% of rows and only warn. Review it: tighten or loosen,\n"
        "# mark what may fail without blocking with `severity: warning`, delete the noise.\n"
    )
    body = {"name": name, "target": target, "expectations": expectations}
    return header + yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=100)
