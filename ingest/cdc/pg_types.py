"""PostgreSQL values as text (what COPY and wal2json print) to exact DuckDB types.

Both halves of change data capture see a column's value as its type's text output: the
snapshot through COPY, the stream through wal2json. One cast per column, from the type
name `format_type()` prints (`numeric(12,2)`, `timestamp with time zone`, `text[]`),
types them the same way, and as exactly as the database scanner does: numerics without
a precision (or wider than DuckDB's 38 digits) stay exact text, json/jsonb become JSON,
bytea bytes, arrays lists.
"""

from __future__ import annotations

import json
import re

from lake.duck import quote_ident

_SCALARS = {
    "smallint": "SMALLINT",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "real": "FLOAT",
    "double precision": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp without time zone": "TIMESTAMP",
    "timestamp with time zone": "TIMESTAMPTZ",
    "time without time zone": "TIME",
    "time with time zone": "TIMETZ",
    "interval": "INTERVAL",
    "uuid": "UUID",
    "json": "JSON",
    "jsonb": "JSON",
    "bytea": "BLOB",
    "oid": "BIGINT",
}
_NUMERIC = re.compile(r"numeric\((\d+),(\d+)\)")
_PRECISION = re.compile(r"^(timestamp|time)\(\d+\)")


def _base(pg_type: str) -> str:
    # `timestamp(3) with time zone` -> `timestamp with time zone`
    return _PRECISION.sub(r"\1", pg_type.strip())


def duck_type(pg_type: str) -> str:
    """The DuckDB type a PostgreSQL column lands as (VARCHAR for anything else)."""
    name = _base(pg_type)
    if name.endswith("[]"):
        return f"{duck_type(name[:-2])}[]"
    if name in _SCALARS:
        return _SCALARS[name]
    numeric = _NUMERIC.fullmatch(name)
    if numeric and int(numeric.group(1)) <= 38:
        return f"DECIMAL({numeric.group(1)}, {numeric.group(2)})"
    return "VARCHAR"  # text, varchar(n), char(n), enums, numeric without precision, ...


def cast(column: str, pg_type: str) -> str:
    """SQL that types the text column `column` (arrays arrive as JSON lists of text)."""
    ref = quote_ident(column)
    kind = duck_type(pg_type)
    if kind.endswith("[]"):
        element = kind[:-2]
        item = "unhex(substr(x, 3))" if element == "BLOB" else f"x::{element}"
        return f"list_transform(from_json({ref}, '[\"VARCHAR\"]'), x -> {item}) AS {ref}"
    if kind == "BLOB":
        return f"unhex(substr({ref}, 3)) AS {ref}"  # bytea's hex output: \x0102
    return f"{ref}::{kind} AS {ref}" if kind != "VARCHAR" else ref


def array_to_json(text: str) -> str:
    """A one-dimensional PostgreSQL array literal (`{a,"b c",NULL}`) as a JSON list of
    its elements' text. (Nested arrays are flattened: DuckDB lists here have one level.)"""
    items: list[str | None] = []
    i, n = 0, len(text)
    if text.startswith("["):  # explicit bounds: [0:1]={...}
        i = text.index("=") + 1
    while i < n:
        ch = text[i]
        if ch in "{},":
            i += 1
        elif ch == '"':
            i += 1
            out = []
            while text[i] != '"':
                if text[i] == "\\":
                    i += 1
                out.append(text[i])
                i += 1
            items.append("".join(out))
            i += 1
        else:
            j = i
            while j < n and text[j] not in ",}":
                j += 1
            word = text[i:j].strip()
            items.append(None if word == "NULL" else word)
            i = j
    return json.dumps(items, ensure_ascii=False)
