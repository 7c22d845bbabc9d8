"""Change data capture into the lake: snapshot, then stream, exactly once.

For each source with `cdc: true` tables, one replication slot. A drain:
1. holds the tables' writer locks, creates the slot when missing;
2. snapshots every table the lake has no log for yet, from a snapshot exported at a
   position P (a temporary slot's consistent point): its rows land as `snapshot`
   changes at P, and the stream skips what committed before P: no gap, no overlap;
3. peeks whole transactions (about `max_batch_changes` changes at a time), spools each
   table's changes to disk, and lands each table's batch: rows and position committed in
   one lake transaction (the position is the batch's watermark);
4. only then advances the slot past what every table has landed.

A crash anywhere leaves the slot behind the lake, never ahead: the next drain reads
some changes again, and each table skips the transactions its log already holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import duckdb
import psycopg
from psycopg import sql

from ingest.cdc import slot as pg_slot
from ingest.cdc.changes import Decoder, TableSpool
from ingest.cdc.current import META, log_position
from ingest.cdc.pg_types import cast
from ingest.config import SourceConfig, TableConfig
from ingest.errors import IngestError
from ingest.run import _land, _through_blinks
from ingest.sources import Extract, Opened
from ingest.sources.database import _schema, database_url
from lake import BatchRecord, Lake, TableState, load_state
from lake.duck import quote_ident, quote_str

log = logging.getLogger("lakehouse.cdc")

Land = Callable[[TableConfig, TableState, Extract], None]


def slot_name(src: SourceConfig) -> str:
    assert src.database is not None
    return src.database.cdc.slot or f"lakehouse_{src.name}"


class Capture:
    """One source's CDC tables, drained into the lake (see the module's docstring)."""

    def __init__(
        self,
        lake: Lake,
        src: SourceConfig,
        tables: list[TableConfig],
        base_dir: Path,
        run_id: str | None = None,
    ) -> None:
        assert src.database is not None
        self.lake, self.src, self.run_id = lake, src, run_id
        self.tables = sorted(tables, key=lambda t: t.name)
        self.options = src.database.cdc
        self.url = database_url(src, base_dir)
        self.schema = _schema(src)
        self.slot = slot_name(src)
        self.landed: dict[str, list[BatchRecord]] = {t.name: [] for t in self.tables}
        self.lag_bytes = 0
        self.confirmed = 0
        self.snapshotted = False  # every table has a log (known after a first drain)

    def remote(self, table: TableConfig) -> str:
        return table.table or table.name

    def drain(self, con: duckdb.DuckDBPyConnection, stop: threading.Event | None = None) -> int:
        """Land everything committed at the source until now; returns changes landed."""

        def land(table: TableConfig, state: TableState, extract: Extract) -> None:
            where = f"{self.src.name}.{table.name}: {extract.description}"
            record = _through_blinks(
                self.lake,
                where,
                lambda: _land(con, self.lake, self.src, table, state, extract, self.run_id),
            )
            self.landed[table.name].append(record)
            log.info(
                "%s.%s: landed %s: %s changes",
                self.src.name,
                table.name,
                extract.description,
                f"{record.rows:,}",
            )

        total = 0
        with contextlib.ExitStack() as held:
            for table in self.tables:  # (sorted: two drains never deadlock)
                held.enter_context(self.lake.table_lock(self.src.name, table.name))
            pg = held.enter_context(contextlib.closing(pg_slot.connect(self.url, self.src.name)))
            for table in self.tables:
                pg_slot.check_identity(pg, self.src.name, table.name, self.schema,
                                       self.remote(table))  # fmt: skip
            existed = pg_slot.slot_info(pg, self.slot) is not None
            info = pg_slot.ensure_slot(pg, self.src.name, self.slot, self.options.create_slot)
            self.confirmed = info.confirmed
            self._check_lag(info.lag_bytes)
            if existed and self.snapshotted and pg_slot.flush_position(pg) <= info.confirmed:
                return 0  # nothing written at the source since the last drain confirmed
            states = {t.name: load_state(con, self.src.name, t.name) for t in self.tables}
            new = [t for t in self.tables if log_position(states[t.name]) is None]
            if not existed and len(new) < len(self.tables):
                # a new slot starts now: what changed since the logs' positions is gone
                log.warning(
                    "%s: replication slot %s was missing: created; its tables are "
                    "snapshotted again (a snapshot supersedes the log before it)",
                    self.src.name,
                    self.slot,
                )
                new = list(self.tables)
            if new:
                total += self._snapshot(con, new, states, land)
            self.snapshotted = True
            while stop is None or not stop.is_set():
                landed, caught_up = self._chunk(pg, con, states, land)
                total += landed
                if caught_up:
                    break
            after = pg_slot.slot_info(pg, self.slot)
            self.lag_bytes = after.lag_bytes if after else 0
        return total

    def _snapshot(
        self,
        con: duckdb.DuckDBPyConnection,
        tables: list[TableConfig],
        states: dict[str, TableState],
        land: Land,
    ) -> int:
        folder = Path(tempfile.mkdtemp(prefix="lakehouse-cdc-"))
        try:
            copied = []
            with pg_slot.exported_snapshot(self.url, self.src.name) as (pg, at):
                for table in tables:
                    columns = pg_slot.column_types(pg, self.schema, self.remote(table))
                    if not columns:
                        raise IngestError(
                            self.src.name,
                            table.name,
                            f"table {self.schema}.{self.remote(table)} not found in the database",
                        )
                    path = folder / f"{table.name}.csv"
                    self._copy(pg, table, columns, path)
                    copied.append((table, columns, path))
                row = pg.execute("SELECT now()::text").fetchone()
                taken = row[0] if row else None
            rows = 0
            for table, columns, path in copied:
                description = (
                    f"snapshot {self.schema}.{self.remote(table)} at {pg_slot.lsn_text(at)}"
                )
                select = _snapshot_select(path, columns, at, taken)
                extract = Extract(
                    _fingerprint(self.slot, table, "snapshot", at),
                    description,
                    lambda c, s=select: Opened(c.sql(s)),  # type: ignore[misc]
                    {"mode": "cdc_snapshot", "position": pg_slot.lsn_text(at)},
                    watermark=str(at),
                )
                land(table, states[table.name], extract)
                rows += self.landed[table.name][-1].rows
            return rows
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _copy(
        self, pg: psycopg.Connection, table: TableConfig, columns: list[tuple[str, str]], path: Path
    ) -> None:
        """COPY the table out as CSV, streamed to disk (arrays as JSON lists)."""
        items = [
            sql.SQL("to_json({c})::text AS {c}").format(c=sql.Identifier(name))
            if kind.endswith("[]")
            else sql.Identifier(name)
            for name, kind in columns
        ]
        query = sql.SQL("COPY (SELECT {cols} FROM {schema}.{table}) TO STDOUT (FORMAT csv, HEADER)")
        with (
            pg.cursor().copy(
                query.format(
                    cols=sql.SQL(", ").join(items),
                    schema=sql.Identifier(self.schema),
                    table=sql.Identifier(self.remote(table)),
                )
            ) as copy,
            path.open("wb") as out,
        ):
            for chunk in copy:
                out.write(chunk)

    def _chunk(
        self,
        pg: psycopg.Connection,
        con: duckdb.DuckDBPyConnection,
        states: dict[str, TableState],
        land: Land,
    ) -> tuple[int, bool]:
        """One peek: land each table's changes, then advance the slot. Returns (changes
        landed, whether the slot caught up with the server)."""
        upto = pg_slot.flush_position(pg)
        folder = Path(tempfile.mkdtemp(prefix="lakehouse-cdc-"))
        try:
            spools = {}
            for table in self.tables:
                columns = pg_slot.column_types(pg, self.schema, self.remote(table))
                spools[f"{self.schema}.{self.remote(table)}"] = TableSpool(
                    folder,
                    table.name,
                    columns,
                    list(table.primary_key),
                    log_position(states[table.name]) or 0,
                )
            decoder = Decoder(spools)
            messages = 0
            try:
                for at, data in pg_slot.peek(
                    self.url, self.slot, upto, self.options.max_batch_changes, list(spools)
                ):
                    decoder.feed(at, data)
                    messages += 1
            finally:
                decoder.close()
            caught_up = messages < self.options.max_batch_changes
            for table in self.tables:
                spool = spools[f"{self.schema}.{self.remote(table)}"]
                if not spool.rows:
                    continue
                description = (
                    f"cdc {self.slot}: {self.schema}.{self.remote(table)} "
                    f"{pg_slot.lsn_text(spool.first)}..{pg_slot.lsn_text(spool.last)}"
                )
                select = spool.select()
                extract = Extract(
                    _fingerprint(self.slot, table, spool.position, decoder.end),
                    description,
                    lambda c, s=select: Opened(c.sql(s)),  # type: ignore[misc]
                    {
                        "mode": "cdc",
                        "from": pg_slot.lsn_text(spool.position),
                        "to": pg_slot.lsn_text(decoder.end),
                        "changes": spool.rows,
                    },
                    watermark=str(decoder.end),
                )
                land(table, states[table.name], extract)
            done = max(decoder.end, upto) if caught_up else decoder.end
            if done > self.confirmed:
                pg_slot.advance(pg, self.slot, done)
                self.confirmed = done
            return decoder.changes, caught_up or decoder.end == 0
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _check_lag(self, lag_bytes: int) -> None:
        """Warn when the slot was further behind than `lag_warning_mb` (the server keeps
        that WAL), before draining it."""
        self.lag_bytes = lag_bytes
        if self.lag_bytes > self.options.lag_warning_mb * 1024 * 1024:
            log.warning(
                "%s: replication slot %s is %s bytes (%.0f MB) behind the server (database.cdc."
                "lag_warning_mb: %g): the server keeps that WAL until the lake catches up; "
                "run `lakehouse cdc %s` more often, or drop the slot if the source is retired",
                self.src.name,
                self.slot,
                f"{self.lag_bytes:,}",
                self.lag_bytes / 2**20,
                self.options.lag_warning_mb,
                self.src.name,
            )


def _fingerprint(slot: str, table: TableConfig, start: object, end: int) -> str:
    return hashlib.sha256(f"cdc\0{slot}\0{table.name}\0{start}\0{end}".encode()).hexdigest()


def _snapshot_select(path: Path, columns: list[tuple[str, str]], at: int, taken: str | None) -> str:
    spec = ", ".join(f"{quote_str(c)}: 'VARCHAR'" for c, _ in columns)
    typed = ", ".join(cast(c, t) for c, t in columns)
    meta = {
        "_op": "'snapshot'",
        "_lsn": f"{at}::BIGINT",
        "_seq": "0::BIGINT",
        "_xid": "NULL::BIGINT",
        "_commit_ts": f"{quote_str(taken or '')}::TIMESTAMPTZ",
        "_unchanged": "[]::VARCHAR[]",
        "_before": "NULL::JSON",
    }
    assert list(meta) == [m for m, _ in META]
    head = ", ".join(f"{v} AS {quote_ident(k)}" for k, v in meta.items())
    return (
        f"SELECT {head}, {typed} FROM read_csv({quote_str(str(path))}, header = true, "
        f"columns = {{{spec}}}, allow_quoted_nulls = false, max_line_size = 67108864, "
        "buffer_size = 67108864)"
    )
