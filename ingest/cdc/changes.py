"""wal2json messages to change-log rows, spooled to disk per table.

Every row of a change log is one change: `_op` (snapshot, insert, update, delete,
truncate), `_lsn` (the source transaction's commit position: the order of the log),
`_seq` (its order inside the transaction), `_xid`, `_commit_ts`, `_unchanged` (columns
an update did not send: PostgreSQL leaves TOASTed values out when they did not change;
the previous version holds them), `_before` (the old key, or the old row under REPLICA
IDENTITY FULL) and the row's columns, typed. A delete carries its key in the key columns.
An update that changes the key is a delete of the old key, then the update.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from ingest.cdc.current import META
from ingest.cdc.pg_types import array_to_json, cast, duck_type
from ingest.cdc.slot import lsn_int
from lake.duck import quote_ident, quote_str

_FIXED = {
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "FLOAT",
    "DOUBLE",
    "BOOLEAN",
    "DATE",
    "TIMESTAMP",
    "TIMESTAMPTZ",
    "TIME",
    "TIMETZ",
    "INTERVAL",
    "UUID",
}
_OPS = {"I": "insert", "U": "update", "D": "delete", "T": "truncate"}


def _text(value: Any, pg_type: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if pg_type.endswith("[]"):
        return array_to_json(value)
    if pg_type == "bytea":
        return f"\\x{value}"  # wal2json prints bare hex; COPY (and the cast) has \x
    return value if isinstance(value, str) else json.dumps(value)


class TableSpool:
    """One table's changes of one batch, as JSON Lines in a spool file."""

    def __init__(
        self, folder: Path, name: str, columns: list[tuple[str, str]], key: list[str], position: int
    ) -> None:
        self.path = folder / f"{name}.jsonl"
        self.types: dict[str, str] = dict(columns)
        self.live: set[str] = set(self.types)  # columns an insert would carry now
        self.key, self.position = key, position
        self.rows, self.first, self.last = 0, 0, 0
        self._out: IO[str] | None = None

    def _write(self, row: dict[str, Any]) -> None:
        if self._out is None:
            self._out = self.path.open("w", encoding="utf-8")
            self.first = row["_lsn"]
        self._out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
        self._out.write("\n")
        self.rows += 1
        self.last = row["_lsn"]

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def _values(self, fields: list[dict[str, Any]]) -> dict[str, str | None]:
        values = {}
        for f in fields:
            self.types[f["name"]] = f["type"]
            values[f["name"]] = _text(f["value"], f["type"])
        return values

    def add(self, msg: dict[str, Any], tx: dict[str, Any]) -> None:
        op = _OPS[msg["action"]]
        values = self._values(msg.get("columns") or [])
        old = self._values(msg.get("identity") or []) if msg.get("identity") else None
        unchanged: list[str] = []
        if op == "insert":
            self.live = set(values)  # (a dropped column is gone from inserts)
        elif op == "update":
            unchanged = sorted(
                c for c in self.live - set(values) if duck_type(self.types[c]) not in _FIXED
            )
            if old and any(old.get(k) != values.get(k) for k in self.key if k in old):
                self._row("delete", tx, old, old, [])  # the key moved
        elif op == "delete":
            values = dict(old or {})
        self._row(op, tx, values, old, unchanged)

    def _row(
        self,
        op: str,
        tx: dict[str, Any],
        values: dict[str, str | None],
        before: dict[str, str | None] | None,
        unchanged: list[str],
    ) -> None:
        tx["seq"] += 1
        self._write(
            {
                "_op": op,
                "_lsn": tx["end"],
                "_seq": tx["seq"],
                "_xid": tx["xid"],
                "_commit_ts": tx["ts"],
                "_unchanged": unchanged,
                "_before": before,
                "c": values,
            }
        )

    def select(self) -> str:
        """The typed change-log rows of the spool."""
        struct = ", ".join(f"{quote_ident(c)} VARCHAR" for c in self.types)
        columns = {name: kind for name, kind in META if name not in ("_commit_ts", "_before")}
        spec = ", ".join(f"{quote_str(k)}: {quote_str(v)}" for k, v in columns.items())
        spec += f", '_commit_ts': 'VARCHAR', '_before': 'JSON', 'c': 'STRUCT({struct})'"
        typed = ", ".join(cast(c, t) for c, t in self.types.items())
        return (
            "SELECT _op, _lsn, _seq, _xid, _commit_ts::TIMESTAMPTZ AS _commit_ts, _unchanged, "
            f"_before, {typed} FROM (SELECT * EXCLUDE (c), unnest(c) FROM read_json("
            f"{quote_str(str(self.path))}, format = 'newline_delimited', "
            f"columns = {{{spec}}}, maximum_object_size = 67108864))"
        )


class Decoder:
    """Feeds one peek's messages (whole transactions, in commit order) to the spools of
    the tables they touch, skipping transactions a table's log already holds."""

    def __init__(self, spools: dict[str, TableSpool]) -> None:
        self.spools = spools
        self.end = 0  # the position after the last whole transaction read
        self.changes = 0
        self._tx: dict[str, Any] = {"end": 0, "xid": None, "ts": None, "seq": 0}

    def feed(self, position: int, data: str) -> None:
        # numbers come unquoted: kept as their literal text, never through a float
        msg = json.loads(data, parse_float=str, parse_int=str, parse_constant=str)
        action = msg["action"]
        if action == "B":
            self._tx = {
                "end": lsn_int(msg["nextlsn"]),
                "xid": int(msg["xid"]) if msg.get("xid") is not None else None,
                "ts": msg.get("timestamp"),
                "seq": 0,
            }
        elif action == "C":
            self.end = position
        elif action in _OPS:
            spool = self.spools.get(f"{msg['schema']}.{msg['table']}")
            if spool is not None and self._tx["end"] > spool.position:
                spool.add(msg, self._tx)
                self.changes += 1

    def close(self) -> None:
        for spool in self.spools.values():
            spool.close()
