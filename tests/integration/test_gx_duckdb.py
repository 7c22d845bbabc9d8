"""The GX + DuckDB workaround (expectations/gx_duckdb.py) is needed, and it works.

If the first test fails after a GX upgrade, GX has fixed issue #11579: delete
`expectations/gx_duckdb.py` and its call in `expectations/gate.py`.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import great_expectations as gx
import pytest
from great_expectations.execution_engine import SqlAlchemyExecutionEngine

from expectations import gx_duckdb


def _validate(db: Path) -> tuple[list[bool], list[str], object]:
    ctx = gx.get_context(mode="ephemeral")
    ds = ctx.data_sources.add_sql(
        "d", connection_string=f"duckdb:///{db}", kwargs=gx_duckdb.engine_kwargs({}, read_only=True)
    )
    batch = ds.add_table_asset("t", table_name="t").add_batch_definition_whole_table("w")
    suite = gx.ExpectationSuite("s")
    suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column="id"))
    suite.add_expectation(
        gx.expectations.ExpectColumnValuesToBeBetween(column="v", min_value=0, max_value=5)
    )
    result = batch.get_batch().validate(suite)
    engine = ds.get_execution_engine()
    messages = [str(r.exception_info) for r in result.results]
    gx_duckdb.close(ds)
    return [bool(r.success) for r in result.results], messages, engine


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "t.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t AS SELECT range AS id, range % 7 AS v FROM range(1000)")
    con.close()
    return path


def test_gx_on_duckdb_is_still_broken_without_the_workaround(db: Path) -> None:
    was_applied = gx_duckdb.is_applied()
    gx_duckdb.revert()
    try:
        successes, messages, _ = _validate(db)
    finally:
        if was_applied:
            gx_duckdb.apply()
    assert successes == [False, False], (
        "GX validates DuckDB without the workaround now: GX fixed issue #11579, "
        "remove expectations/gx_duckdb.py"
    )
    assert any("list index out of range" in m or "raised_exception" in m for m in messages)


def test_with_the_workaround_expectations_run_as_sql(db: Path) -> None:
    gx_duckdb.apply()
    successes, _, engine = _validate(db)
    # not-null passes; 14.2% of v are 6, outside 0..5
    assert successes == [True, False]
    assert isinstance(engine, SqlAlchemyExecutionEngine)  # SQL pushdown, not pandas
