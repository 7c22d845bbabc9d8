"""Landing a sealed segment of the write-ahead log: every stream in it, its refused
events and their batch-log rows, in one lake transaction. A segment already in the log
(the collector died after the commit, before deleting it) is not landed again."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson

from ingest.config import PUSHED_KINDS, SourceConfig, TableConfig
from ingest.stream.wal import REJECTS, parse_stream_file
from lake import layout
from lake.batches import in_transaction, table_columns, transaction
from lake.commit import new_load_id
from lake.duck import quote_ident, quote_str
from lake.failpoints import failpoint

log = logging.getLogger("lakehouse.collect")

TOPIC = "_topic"
"""MQTT tables: the topic each reading came on (a sensor's or a site's name is often in it)."""


@dataclass(frozen=True)
class Stream:
    source: SourceConfig
    table: TableConfig

    @property
    def raw(self) -> str:
        return layout.raw_table(self.source.name, self.table.name)

    @property
    def columns(self) -> dict[str, str]:
        extra = {TOPIC: "VARCHAR"} if self.source.kind == "mqtt" else {}
        return {**{c: t.upper() for c, t in self.table.columns.items()}, **extra}


@dataclass
class Landed:
    rows: dict[tuple[str, str], int] = field(default_factory=dict)
    rejected: int = 0
    duplicates: int = 0
    skipped: bool = False
    """The segment was in the lake already."""


def streams_of(sources: list[SourceConfig]) -> dict[tuple[str, str], Stream]:
    """Every table of the pushed sources (`kind: events` and `kind: mqtt`)."""
    return {(s.name, t.name): Stream(s, t) for s in sources if s.kind in PUSHED_KINDS
            for t in s.tables}  # fmt: skip


def ensure_tables(con: duckdb.DuckDBPyConnection, streams: list[Stream],
                  inline_rows: int | None = None) -> None:  # fmt: skip
    """Create each stream's raw table with its declared columns (plus lineage), and add
    the columns declared since: dbt can build on a stream before its first event. With
    `inline_rows`, micro-batches up to that many rows are inlined in the catalog."""

    @in_transaction
    def create(stream: Stream) -> None:
        relation = stream.raw.removeprefix("lake.")
        with transaction(con):
            existing = table_columns(con, relation)
            if existing is None:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS lake.{quote_ident(stream.source.name)}")
                cols = ", ".join(f"{quote_ident(c)} {t}" for c, t in stream.columns.items())
                con.execute(f"CREATE TABLE {stream.raw} ({cols}, _load_id VARCHAR, "
                            "_source_file VARCHAR, _ingested_at TIMESTAMPTZ)")  # fmt: skip
            else:
                have = {c for c, _ in existing}
                for c, t in stream.columns.items():
                    if c not in have:
                        con.execute(f"ALTER TABLE {stream.raw} ADD COLUMN {quote_ident(c)} {t}")

    have: dict[tuple[str, str], set[str]] = {}
    for schema, table, column in con.execute(
        "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
        "WHERE database_name = 'lake'"
    ).fetchall():  # (one read: most runs find every table as declared)
        have.setdefault((schema, table), set()).add(column)
    for stream in streams:
        if not set(stream.columns) <= have.get((stream.source.name, stream.table.name), set()):
            create(stream)
        if inline_rows is not None:
            con.execute(
                f"CALL lake.set_option('data_inlining_row_limit', {int(inline_rows)}, "
                f"schema => {quote_str(stream.source.name)}, "
                f"table_name => {quote_str(stream.table.name)})"
            )


def land_segment(
    con: duckdb.DuckDBPyConnection,
    seg_dir: Path,
    seg_id: str,
    streams: dict[tuple[str, str], Stream],
    dedupe_window: str,
) -> Landed:
    files = {parse_stream_file(f.name): f for f in seg_dir.glob("*.jsonl") if f.name != REJECTS}
    rejects: dict[tuple[str, str], list[dict]] = {}
    if (seg_dir / REJECTS).exists():
        for line in (seg_dir / REJECTS).read_bytes().splitlines():
            item = orjson.loads(line)
            rejects.setdefault((item["source"], item["table"]), []).append(item)
    fingerprint = f"stream:{seg_id}"
    landed = Landed()

    @in_transaction
    def commit() -> None:
        landed.rows.clear()
        landed.rejected = landed.duplicates = 0
        with transaction(con):
            done = con.execute(
                f"SELECT count(*) FROM lake.{layout.BATCHES} WHERE fingerprint = ?",
                [fingerprint],
            ).fetchone()
            if done and done[0]:
                landed.skipped = True
                return
            now = datetime.now(UTC)
            for key in sorted(set(files) | set(rejects)):
                stream = streams.get(key)
                if stream is None:
                    raise RuntimeError(
                        f"{seg_dir}: stream {key[0]}.{key[1]} is no longer "
                        "declared: declare it again to land these events"
                    )
                load_id = new_load_id(f"{fingerprint}:{key}", now)
                rows, dupes = (
                    _insert(con, stream, files[key], load_id, seg_id, dedupe_window)
                    if key in files
                    else (0, 0)
                )
                bad = rejects.get(key, [])
                for item in bad:
                    con.execute(
                        f"INSERT INTO lake.{layout.REJECTED} VALUES (?, ?, ?, ?, ?, NULL, "
                        "'refused', ?, ?, now())",
                        [
                            key[0],
                            key[1],
                            load_id,
                            item["where"],
                            item["index"],
                            item["raw"],
                            item["reason"],
                        ],
                    )
                _log_batch(con, stream, load_id, fingerprint, seg_id, rows, len(bad), dupes)
                landed.rows[key] = rows
                landed.rejected += len(bad)
                landed.duplicates += dupes
            failpoint("stream_before_commit")

    commit()
    return landed


def _insert(
    con: duckdb.DuckDBPyConnection,
    stream: Stream,
    file: Path,
    load_id: str,
    seg_id: str,
    dedupe_window: str,
) -> tuple[int, int]:
    columns = stream.columns
    spec = "{" + ", ".join(f"{quote_str(c)}: {quote_str(t)}" for c, t in columns.items()) + "}"
    read = f"read_json({quote_str(str(file))}, format = 'newline_delimited', columns = {spec})"
    names = ", ".join(quote_ident(c) for c in columns)
    lineage = f"{quote_str(load_id)}, {quote_str('collector ' + seg_id)}, now()"
    keys = stream.table.primary_key
    if not keys:
        row = con.execute(
            f"INSERT INTO {stream.raw} ({names}, _load_id, _source_file, "
            f"_ingested_at) SELECT {names}, {lineage} FROM {read}"
        ).fetchone()
        return (int(row[0]) if row else 0), 0
    part = ", ".join(quote_ident(k) for k in keys)
    match = " AND ".join(f"t.{quote_ident(k)} = e.{quote_ident(k)}" for k in keys)
    row = con.execute(
        f"INSERT INTO {stream.raw} ({names}, _load_id, _source_file, _ingested_at) "
        f"SELECT {names}, {lineage} FROM (SELECT * FROM {read} "
        f"QUALIFY row_number() OVER (PARTITION BY {part}) = 1) AS e "
        f"WHERE NOT EXISTS (SELECT 1 FROM {stream.raw} AS t WHERE "
        f"t._ingested_at >= now() - INTERVAL {quote_str(dedupe_window)} AND {match})"
    ).fetchone()
    rows = int(row[0]) if row else 0
    with file.open("rb") as f:  # one event a line (JSON encoding never breaks a line)
        total = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return rows, total - rows


def _log_batch(
    con: duckdb.DuckDBPyConnection,
    stream: Stream,
    load_id: str,
    fingerprint: str,
    seg_id: str,
    rows: int,
    rejected: int,
    duplicates: int,
) -> None:
    src, tbl = stream.source.name, stream.table.name
    info = {"segment": seg_id, "duplicates_dropped": duplicates}
    con.execute(
        f"INSERT INTO lake.{layout.BATCHES} VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, NULL, 'append', 'landed', NULL, NULL, "
        "NULL, now())",
        [
            load_id,
            src,
            tbl,
            f"{stream.source.kind}:{src}.{tbl}",
            fingerprint,
            f"{stream.source.kind} micro-batch {seg_id}",
            json.dumps(info),
            rows,
            rejected,
            json.dumps([[c, t] for c, t in stream.columns.items()]),
        ],
    )
