"""A change log's current state: each key's latest version, deleted keys gone.

The rule, shared with dbt's `cdc_current` macro: changes in log order (`_lsn`, `_seq`);
the latest snapshot or truncate resets the table (a snapshot's rows are the table at its
position, a truncate empties it); a key's last change decides whether it exists; each
column takes the value of the key's latest change that sent it (an update leaves out
TOASTed values it did not change, listed in `_unchanged`).
"""

from __future__ import annotations

from lake import TableState
from lake.duck import quote_ident, quote_str

META = (
    ("_op", "VARCHAR"),
    ("_lsn", "BIGINT"),
    ("_seq", "BIGINT"),
    ("_xid", "BIGINT"),
    ("_commit_ts", "TIMESTAMPTZ"),
    ("_unchanged", "VARCHAR[]"),
    ("_before", "JSON"),
)
META_COLUMNS = tuple(name for name, _ in META)
LINEAGE = ("_load_id", "_source_file", "_ingested_at")


def current_state(relation: str, key: list[str], columns: list[str]) -> str:
    """SQL over the change log `relation`: one row per live key, the table's columns
    plus `_lsn` and `_commit_ts` of the key's last change."""
    keys = ", ".join(quote_ident(k) for k in key)
    order = "(_lsn, _seq)"
    values = [
        f"arg_max({{'v': {quote_ident(c)}}}, {order}) FILTER "
        f"(WHERE NOT list_contains(_unchanged, {quote_str(c)})).v AS {quote_ident(c)}"
        for c in columns
        if c not in key and c not in META_COLUMNS and c not in LINEAGE
    ]
    picked = ", ".join([keys, *values])
    return (
        "WITH reset AS (SELECT coalesce(max((_lsn, CASE WHEN _op = 'snapshot' THEN -1 "
        f"ELSE _seq END)) FILTER (WHERE _op IN ('snapshot', 'truncate')), (-1, -1)) AS at "
        f"FROM {relation}), "
        f"live AS (SELECT l.* FROM {relation} AS l, reset WHERE {order} > reset.at "
        f"AND _op <> 'truncate') "
        f"SELECT {picked}, max(_lsn) AS _lsn, arg_max(_commit_ts, {order}) AS _commit_ts "
        f"FROM live GROUP BY {keys} HAVING arg_max(_op, {order}) <> 'delete'"
    )


def log_position(state: TableState) -> int | None:
    """How far a table's change log goes: its newest batch's position (quarantined
    batches count: their changes are held, to be released)."""
    marks = [int(b.watermark) for b in state.batches if b.watermark and b.watermark.isdigit()]
    return max(marks) if marks else None
