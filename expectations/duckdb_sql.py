"""Expectations that GX cannot run on DuckDB, or that need more than one table, written
as GX's own `UnexpectedRowsExpectation` (SQL that returns the offending rows; `{batch}`
is the data under test). Suites keep the natural names; `SuiteSpec.to_gx` translates.

GX expectations that fail on the DuckDB dialect, run as the equivalent SQL:
    expect_column_values_to_match_regex         {column, regex}
    expect_column_values_to_match_like_pattern  {column, like_pattern}
    expect_column_values_to_be_of_type          {column, type_}   (a DuckDB type name)

lakehouse shorthands:
    expect_column_values_to_exist_in  {column, table, other_column, row_condition}
        referential check (`table` is another table of the same gate: raw
        `<source>__<table>`, or a mart; `row_condition`: SQL choosing the rows to check)
    expect_column_max_to_be_recent    {column, max_age_hours}          freshness
    expect_row_count_vs_previous_batch {min_ratio, max_ratio}         volume change
        (raw gate only: compared to the table's last batch that passed)
"""

from __future__ import annotations

from typing import Any


def _braces(text: str) -> str:
    """GX formats the query (`{batch}`): literal braces, as in `[0-9]{6}`, are doubled."""
    return text.replace("{", "{{").replace("}", "}}")


def _ident(name: str) -> str:
    return _braces('"' + str(name).replace('"', '""') + '"')


def _str(value: Any) -> str:
    return _braces("'" + str(value).replace("'", "''") + "'")


def _regex(kw: dict[str, Any]) -> str:
    col = _ident(kw["column"])
    return (f"SELECT * FROM {{batch}} WHERE {col} IS NOT NULL "
            f"AND NOT regexp_full_match({col}::VARCHAR, {_str(kw['regex'])})")  # fmt: skip


def _like(kw: dict[str, Any]) -> str:
    col = _ident(kw["column"])
    return (f"SELECT * FROM {{batch}} WHERE {col} IS NOT NULL "
            f"AND NOT ({col}::VARCHAR LIKE {_str(kw['like_pattern'])})")  # fmt: skip


def _of_type(kw: dict[str, Any]) -> str:
    return (f"SELECT * FROM (SELECT any_value(typeof({_ident(kw['column'])})) AS observed_type "
            f"FROM {{batch}}) WHERE observed_type <> {_str(kw['type_'])}")  # fmt: skip


def _exist_in(kw: dict[str, Any]) -> str:
    col, other = _ident(kw["column"]), _ident(kw.get("other_column", kw["column"]))
    only = f" AND ({_braces(kw['row_condition'])})" if kw.get("row_condition") else ""
    return (f"SELECT * FROM {{batch}} WHERE {col} IS NOT NULL{only} AND {col} NOT IN "
            f"(SELECT {other} FROM {_ident(kw['table'])} WHERE {other} IS NOT NULL)")  # fmt: skip


def _recent(kw: dict[str, Any]) -> str:
    hours = float(kw["max_age_hours"])
    return (f"SELECT * FROM (SELECT max({_ident(kw['column'])})::TIMESTAMPTZ AS newest "
            f"FROM {{batch}}) WHERE newest IS NULL "
            f"OR newest < now() - INTERVAL '{hours} hours'")  # fmt: skip


def _volume(kw: dict[str, Any], target: str) -> str:
    source, _, table = target.partition(".")
    low, high = kw.get("min_ratio"), kw.get("max_ratio")
    checks = []
    if low is not None:
        checks.append(f"n < {float(low)} * previous")
    if high is not None:
        checks.append(f"n > {float(high)} * previous")
    return (
        "SELECT * FROM (SELECT (SELECT count(*) FROM {batch}) AS n, "
        "(SELECT rows FROM lakehouse_batches WHERE source = " + _str(source) + " AND "
        "table_name = " + _str(table) + " AND gate = 'passed' ORDER BY committed_at DESC "
        "LIMIT 1) AS previous) WHERE previous IS NOT NULL AND (" + " OR ".join(checks) + ")"
    )


TRANSLATIONS = {
    "expect_column_values_to_match_regex": _regex,
    "expect_column_values_to_match_like_pattern": _like,
    "expect_column_values_to_be_of_type": _of_type,
    "expect_column_values_to_exist_in": _exist_in,
    "expect_column_max_to_be_recent": _recent,
}


def translate(type_: str, kwargs: dict[str, Any], target: str) -> tuple[str, dict[str, Any]]:
    """The GX expectation to run: the same one, or an UnexpectedRowsExpectation."""
    if type_ == "expect_row_count_vs_previous_batch":
        sql = _volume(kwargs, target)
    elif type_ in TRANSLATIONS:
        sql = TRANSLATIONS[type_](kwargs)
    else:
        return type_, kwargs
    return "unexpected_rows_expectation", {"unexpected_rows_query": sql}
