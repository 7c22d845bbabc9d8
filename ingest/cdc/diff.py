"""Change data capture without a log: each dump compared with the lake's current state.

For databases that have no log to read (SQLite), or no replication rights
(`database.cdc.mode: diff`), a `cdc: true` table is dumped whole, as a full dump is, and
only the difference lands, by primary key, in the change-log shape of log-based CDC:
keys that appeared are inserts, rows whose values changed are updates, keys that are gone
are deletes (their key columns set). The first dump lands as a snapshot. Changes between
two dumps that cancel out (a row inserted and deleted) are not seen: a diff knows states,
not transactions. Positions are the dump's time in microseconds (`_lsn`), always growing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import duckdb

from ingest.cdc.current import LINEAGE, META_COLUMNS, current_state, log_position
from ingest.sources import Extract, Opened
from ingest.sources.database import DatabaseSource, attach
from lake import TableState, layout
from lake.batches import table_columns
from lake.duck import quote_ident, quote_str


class SnapshotDiffSource(DatabaseSource):
    kind = "database_diff"

    def extracts(self, con: duckdb.DuckDBPyConnection, state: TableState) -> Iterator[Extract]:
        alias = attach(con, self.source, self.base_dir)
        dump = self._from(con, alias, "")
        token = self._content_hash(con, dump)
        last = state.last_batch
        if last is not None and last.input.get("content") == token:
            return  # the table is as the log's last change left it
        before = log_position(state)
        at = max(time.time_ns() // 1000, (before or 0) + 1)
        key = list(self.table.primary_key)
        raw = layout.raw_table(self.source.name, self.table.name)
        logged = table_columns(con, raw.removeprefix("lake.")) if before is not None else None
        if logged:
            dumped = [r[0] for r in con.execute(f"DESCRIBE {dump}").fetchall()]
            sql = _diff(dump, dumped, raw, key, logged, at)
        else:
            sql = _snapshot(dump, at)
        description = f"{self.source.kind}:{self.remote_table} diff at {at}"
        fingerprint = hashlib.sha256(f"{description}\0{token}\0{before}".encode())
        yield Extract(
            fingerprint.hexdigest(), description, lambda c: Opened(c.sql(sql)),
            {"mode": "cdc_diff", "content": token}, watermark=str(at),
        )  # fmt: skip


def _meta(op: str, at: int) -> str:
    return (
        f"{op} AS _op, {at}::BIGINT AS _lsn, (row_number() OVER ())::BIGINT AS _seq, "
        "NULL::BIGINT AS _xid, now() AS _commit_ts, []::VARCHAR[] AS _unchanged, "
        "NULL::JSON AS _before"
    )


def _snapshot(dump: str, at: int) -> str:
    return f"SELECT {_meta(quote_str('snapshot'), at)}, * FROM ({dump})"


def _diff(dump: str, dumped: list[str], raw: str, key: list[str], logged: list[list[str]],
          at: int) -> str:  # fmt: skip
    """Inserts, updates and deletes that turn the log's current state into the dump."""
    columns = [c for c, _ in logged if c not in META_COLUMNS and c not in LINEAGE]
    current = current_state(raw, key, columns)
    k0 = quote_ident(key[0])
    on = " AND ".join(f"n.{quote_ident(k)} = c.{quote_ident(k)}" for k in key)
    both = [quote_ident(c) for c in dumped if c in columns and c not in key]
    added = [quote_ident(c) for c in dumped if c not in columns]
    changed = (
        " OR ".join(
            [f"n.{c} IS DISTINCT FROM c.{c}" for c in both] + [f"n.{c} IS NOT NULL" for c in added]
        )
        or "false"
    )
    upsert = f"CASE WHEN c.{k0} IS NULL THEN 'insert' ELSE 'update' END"
    return (
        f"WITH n AS ({dump}), c AS ({current}) "
        f"SELECT {_meta(upsert, at)}, n.* FROM n LEFT JOIN c ON {on} "
        f"WHERE c.{k0} IS NULL OR {changed} "
        f"UNION ALL BY NAME "
        f"SELECT {_meta(quote_str('delete'), at)}, "
        f"{', '.join(f'c.{quote_ident(k)}' for k in key)} FROM c "
        f"WHERE NOT EXISTS (SELECT 1 FROM n WHERE {on})"
    )
