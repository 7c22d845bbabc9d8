"""Each expectation lakehouse translates to SQL for DuckDB passes on good data and fails
on bad data, with the name the suite used."""

from __future__ import annotations

from pathlib import Path

import duckdb
import yaml

from expectations import load_suites, run_gate
from lake.duck import connection_config

SUITE = """
name: checks
target: t
expectations:
  - type: expect_column_values_to_match_regex
    kwargs: {column: code, regex: 'A-[0-9]{2}'}
  - type: expect_column_values_to_match_like_pattern
    kwargs: {column: code, like_pattern: 'A-%'}
  - type: expect_column_values_to_be_of_type
    kwargs: {column: ts, type_: TIMESTAMP}
  - type: expect_column_values_to_exist_in
    kwargs: {column: parent_id, table: parents, other_column: id}
  - type: expect_column_max_to_be_recent
    kwargs: {column: ts, max_age_hours: 24}
  - type: expect_row_count_vs_previous_batch
    kwargs: {min_ratio: 0.5, max_ratio: 3}
  - type: expect_compound_columns_to_be_unique
    kwargs: {column_list: [code, parent_id]}
"""


def _gate(tmp_path: Path, good: bool) -> dict[str, bool]:
    suites_dir = tmp_path / "x" / "suites" / "raw"
    suites_dir.mkdir(parents=True)
    (suites_dir / "checks.yml").write_text(SUITE.replace("target: t", "target: src.t"))
    db = tmp_path / "gate.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE parents AS SELECT range AS id FROM range(10)")
    con.execute(
        "CREATE TABLE lakehouse_batches (source VARCHAR, table_name VARCHAR, load_id VARCHAR, "
        "rows BIGINT, committed_at TIMESTAMPTZ, gate VARCHAR)"
    )
    previous = 10 if good else 100  # the last batch that passed had 10 (or 100) rows
    con.execute(f"INSERT INTO lakehouse_batches VALUES ('src', 't', 'L0', {previous}, now(), "
                "'passed')")  # fmt: skip
    if good:
        con.execute("CREATE TABLE t AS SELECT 'A-' || lpad(range::VARCHAR, 2, '0') AS code, "
                    "range AS parent_id, now()::TIMESTAMP AS ts FROM range(10)")  # fmt: skip
    else:
        con.execute("CREATE TABLE t AS SELECT CASE WHEN range = 3 THEN 'B-3' ELSE 'A-0' END "
                    "AS code, range + 5 AS parent_id, "
                    "(now() - INTERVAL 3 DAY)::VARCHAR AS ts FROM range(10)")  # fmt: skip
    con.close()
    suites = load_suites(tmp_path / "x", "raw")
    result = run_gate("raw", suites, db, {"src.t": [("L1", "main", "t")]},
                      dict(connection_config()))  # fmt: skip
    return {r.expectation.split("(")[0]: r.success for r in result.results}


def test_translated_expectations_pass_on_good_data(tmp_path: Path) -> None:
    outcome = _gate(tmp_path, good=True)
    assert len(outcome) == len(yaml.safe_load(SUITE)["expectations"])
    assert all(outcome.values()), outcome


def test_translated_expectations_fail_on_bad_data(tmp_path: Path) -> None:
    outcome = _gate(tmp_path, good=False)
    assert outcome == {
        "expect_column_values_to_match_regex": False,  # 'B-3', 'A-0'
        "expect_column_values_to_match_like_pattern": False,  # 'B-3'
        "expect_column_values_to_be_of_type": False,  # ts is VARCHAR
        "expect_column_values_to_exist_in": False,  # parents 10..14 do not exist
        "expect_column_max_to_be_recent": False,  # 3 days old
        "expect_row_count_vs_previous_batch": False,  # 10 rows after 100
        "expect_compound_columns_to_be_unique": True,  # (A-0, 5..14) are unique
    }
