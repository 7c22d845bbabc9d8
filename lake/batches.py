"""The batch log: every batch of a raw table commits in one DuckLake transaction.

One transaction holds a batch's rows (its Parquet file added to the raw table, or inlined
when small), its rows that did not parse, the rows it replaces (write dispositions
`replace` and `merge`), and its row in `_lakehouse.batches`: what input it came from,
rows, watermark, columns, run. The log can therefore never be ahead of or behind the
data. Later verdicts (raw gate, quarantine, release) are rows of `_lakehouse.batch_events`,
each written in the same transaction as the change it records.

A table's state (its batches, their gate verdicts, its cursor watermark, the content last
landed for each input) is derived from the two logs: there is no state to rewrite, so a
commit costs the same with 10 or 10,000 batches behind it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import duckdb
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential

from lake import layout
from lake.duck import quote_ident, quote_str
from lake.locks import hold_commits, release_commits

log = logging.getLogger("lakehouse.lake")

DISPOSITIONS = ("append", "replace", "merge")

CATALOG_LOCK = threading.RLock()
"""Serialises DuckLake catalog work between the threads of one process. Two cursors of
one database reading and committing DuckLake metadata at once crash DuckDB 1.5.5 (a
segfault in CI: one ingest worker committed while another read the batch log; see
duckdb/ducklake#1431 and #528). Only the short catalog steps hold it: reading the log and
one batch's transaction. Extracting and writing Parquet stay parallel."""


def _retryable(exc: BaseException) -> bool:
    """A commit that lost a race with another writer (DuckLake conflict, or a SQLite
    catalog busy with another commit): try the transaction again. So is any failed DuckLake
    commit: since 1.5.3 a commit that meets another one can fail with a bogus reason
    ("table with id 3 references schema id 2 that does not exist", seen when two ingests
    created one lake; duckdb/ducklake#1248), and the same transaction run again commits.
    The failed commit left nothing behind, so a lasting fault only costs the retries."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and (
        "conflict" in text or "database is locked" in text or "busy" in text
        or (isinstance(exc, duckdb.TransactionException)
            and "failed to commit ducklake transaction" in text)
    )  # fmt: skip


in_transaction = retry(
    retry=retry_if_exception(_retryable),
    wait=wait_random_exponential(multiplier=0.05, max=2),
    stop=stop_after_attempt(12),
    reraise=True,
)
"""Decorates a function that runs one whole transaction: on a lost race it is rolled
back (by `transaction`) and run again from the start."""


class transaction:
    """BEGIN ... COMMIT, rolled back on any error."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        CATALOG_LOCK.acquire()
        try:
            self.catalog = _sqlite_catalog_of(self.con)
            if self.catalog is not None:  # (see `lake.locks`: one at a time)
                hold_commits(self.catalog)
            try:
                self.con.execute("BEGIN TRANSACTION")
            except BaseException:
                self._release()
                raise
        except BaseException:
            CATALOG_LOCK.release()
            raise
        return self.con

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        try:
            if kind is None:
                try:
                    self.con.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            else:
                self._rollback()
        finally:
            self._release()
            CATALOG_LOCK.release()

    def _release(self) -> None:
        if self.catalog is not None:
            release_commits(self.catalog)

    def _rollback(self) -> None:
        with contextlib.suppress(duckdb.Error):  # no transaction left to roll back
            self.con.execute("ROLLBACK")


def _sqlite_catalog_of(con: duckdb.DuckDBPyConnection) -> str | None:
    """The SQLite catalog file of the lake attached to `con`; None for PostgreSQL."""
    row = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = 'lake' AND type = 'ducklake'"
    ).fetchone()
    path = str(row[0]) if row and row[0] else ""
    return path[len("sqlite:") :] if path.startswith("sqlite:") else None


def ensure_schemas(con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
    """Create the schemas (one per source) that do not exist yet, in one commit."""
    existing = {
        r[0]
        for r in con.execute(
            "SELECT schema_name FROM duckdb_schemas() WHERE database_name = 'lake'"
        ).fetchall()
    }
    missing = [n for n in names if n not in existing]
    if not missing:
        return

    @in_transaction
    def create() -> None:
        with transaction(con):
            for name in missing:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS lake.{quote_ident(name)}")

    create()


@dataclass
class BatchRecord:
    load_id: str
    source: str
    table: str
    input_key: str
    fingerprint: str
    description: str
    rows: int
    """Rows the batch holds (in the raw table, or in quarantine when set aside whole)."""
    rejected: int = 0
    """Rows that did not parse (in `_lakehouse.rejected_rows`, with file, line, reason)."""
    committed_at: str = ""
    input: dict[str, Any] = field(default_factory=dict)
    watermark_from: str | None = None
    watermark: str | None = None
    columns: list[list[str]] | None = None
    schema_change: str | None = None
    disposition: str = "append"
    status: str = "landed"
    """`landed` (in the raw table) or `quarantined` (set aside whole)."""
    reason: str | None = None
    """Why it is quarantined."""
    quarantine_table: str | None = None
    run_id: str | None = None
    gate: str | None = None
    """The raw gate's verdict: None (not checked yet), 'passed' or 'failed'."""
    snapshot_id: int | None = None
    """The DuckLake snapshot that committed it."""

    @property
    def in_raw_zone(self) -> bool:
        return self.status == "landed"

    @property
    def landed_rows(self) -> int:
        return self.rows if self.in_raw_zone else 0

    @property
    def quarantined(self) -> int:
        return self.rejected + (0 if self.in_raw_zone else self.rows)


@dataclass
class TableState:
    source: str
    table: str
    batches: list[BatchRecord] = field(default_factory=list)
    watermark: str | None = None
    """Where the next incremental extract starts: the last landed batch's watermark, set
    back to where a batch started when that batch is quarantined."""

    @property
    def last_by_input(self) -> dict[str, BatchRecord]:
        """The batch that last landed each input (a file, a table dump)."""
        return {b.input_key: b for b in self.batches}

    @property
    def fingerprints(self) -> set[str]:
        return {b.fingerprint for b in self.batches}

    @property
    def columns(self) -> list[list[str]] | None:
        """The columns of the latest batch that reached the raw table."""
        for b in reversed(self.batches):
            if b.columns is not None and b.in_raw_zone:
                return b.columns
        return None

    @property
    def rows(self) -> int:
        return sum(b.landed_rows for b in self.batches)

    @property
    def quarantined(self) -> int:
        return sum(b.quarantined for b in self.batches)

    @property
    def last_batch(self) -> BatchRecord | None:
        return self.batches[-1] if self.batches else None

    def batch(self, load_id: str) -> BatchRecord:
        for b in self.batches:
            if b.load_id == load_id:
                return b
        raise KeyError(f"{self.source}.{self.table}: no batch {load_id}")


# -- reading the logs ------------------------------------------------------------------


def _cursor_key(value: str) -> tuple[int, Any]:
    try:
        return (0, Decimal(value))
    except InvalidOperation:
        return (1, value)


def earliest(a: str | None, b: str | None) -> str | None:
    """The earlier of two watermarks; None (from the beginning) is earliest of all."""
    if a is None or b is None:
        return None
    return min(a, b, key=_cursor_key)


def latest(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b, key=_cursor_key)


_BATCH_COLUMNS = (
    "load_id, source, table_name, input_key, fingerprint, description, input, rows, "
    "rejected, watermark_from, watermark, columns, schema_change, disposition, status, "
    "reason, quarantine_table, run_id, committed_at::VARCHAR, snapshot_id"
)


def _record(row: tuple) -> BatchRecord:
    (load_id, source, table, input_key, fingerprint, description, input_, rows, rejected,
     wfrom, wm, columns, change, disposition, status, reason, qtable, run_id, at,
     snapshot) = row  # fmt: skip
    return BatchRecord(
        load_id, source, table, input_key, fingerprint, description, int(rows),
        int(rejected or 0), at or "", json.loads(input_ or "{}"), wfrom, wm,
        json.loads(columns) if columns else None, change, disposition, status, reason,
        qtable, run_id, None, snapshot,
    )  # fmt: skip


def all_states(
    con: duckdb.DuckDBPyConnection, source: str | None = None, table: str | None = None
) -> list[TableState]:
    """Every raw table's state (or one table's), folded from the logs in commit order."""
    where = ""
    if source is not None and table is not None:
        where = f" WHERE source = {quote_str(source)} AND table_name = {quote_str(table)}"
    with CATALOG_LOCK:
        batches = con.execute(
            f"SELECT {_BATCH_COLUMNS} FROM lake.{layout.BATCHES}{where} "
            "ORDER BY snapshot_id, committed_at, load_id"
        ).fetchall()
        events = con.execute(
            f"SELECT snapshot_id, source, table_name, load_id, event, reason, quarantine_table "
            f"FROM lake.{layout.EVENTS}{where} ORDER BY snapshot_id, event_at"
        ).fetchall()
    states: dict[tuple[str, str], TableState] = {}
    by_id: dict[str, BatchRecord] = {}
    # one timeline per table: batches and events in commit (snapshot) order
    timeline: list[tuple[int, int, Any]] = []
    for n, row in enumerate(batches):
        record = _record(row)
        by_id[record.load_id] = record
        timeline.append((record.snapshot_id or 0, n, record))
    for n, (snap, *ev) in enumerate(events):
        timeline.append((int(snap), len(batches) + n, tuple(ev)))
    timeline.sort(key=lambda t: (t[0], t[1]))
    for _, _, item in timeline:
        if isinstance(item, BatchRecord):  # a batch committed
            state = states.setdefault(
                (item.source, item.table), TableState(item.source, item.table)
            )
            state.batches.append(item)
            if item.in_raw_zone and item.watermark is not None:
                state.watermark = latest(state.watermark, item.watermark)
            continue
        src, tbl, load_id, event, reason, qtable = item
        found = by_id.get(load_id)
        if found is None:
            continue
        record = found
        state = states[(src, tbl)]
        if event in ("gate_passed", "gate_failed"):
            record.gate = event[5:]
        elif event == "quarantined":
            record.status, record.reason, record.quarantine_table = "quarantined", reason, qtable
            state.watermark = earliest(state.watermark, record.watermark_from)
        elif event == "released":
            record.status, record.reason, record.quarantine_table = "landed", None, None
            record.gate = "passed"
            state.watermark = latest(state.watermark, record.watermark)
    return sorted(states.values(), key=lambda s: (s.source, s.table))


def load_state(con: duckdb.DuckDBPyConnection, source: str, table: str) -> TableState:
    found = all_states(con, source, table)
    return found[0] if found else TableState(source, table)


def _snapshot_now(con: duckdb.DuckDBPyConnection) -> int:
    with CATALOG_LOCK:
        row = con.execute("SELECT id FROM lake.current_snapshot()").fetchone()
    return int(row[0]) if row else 0


class StatesRead:
    """Every table's state folded once, as of one lake snapshot, for a run that lands
    many tables: reading the log costs about as much for all of them as for one, and
    the reads take turns (`CATALOG_LOCK`). A table's state is taken from it only while
    the lake has committed nothing since; else it is read again. Call `take` holding the
    table's lock: every batch and quarantine of a table commits under that lock, so no
    commit can then change what was checked."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        with transaction(con):  # (the snapshot and the log, as of one moment)
            self.snapshot = _snapshot_now(con)
            self._states = {(s.source, s.table): s for s in all_states(con)}
        self._taken: set[tuple[str, str]] = set()
        self._lock = threading.Lock()  # (the run's workers take at once)

    def take(self, con: duckdb.DuckDBPyConnection, source: str, table: str) -> TableState:
        """The table's state now. Each is handed out once (its taker may change it): a
        table taken again is read again."""
        key = (source, table)
        with self._lock:
            again = key in self._taken
            self._taken.add(key)
            found = self._states.pop(key, None)
        if again or _snapshot_now(con) != self.snapshot:
            return load_state(con, source, table)
        return found or TableState(source, table)


def table_columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[list[str]] | None:
    """Columns of a lake table (`schema.table`), or None when it does not exist."""
    schema, name = relation.split(".")
    with CATALOG_LOCK:
        rows = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'lake' "
            f"AND schema_name = {quote_str(schema)} AND table_name = {quote_str(name)} "
            "ORDER BY column_index"
        ).fetchall()
    return [[r[0], r[1]] for r in rows] or None


def _event(con: duckdb.DuckDBPyConnection, record: BatchRecord, event: str,
           reason: str | None = None, qtable: str | None = None,
           run_id: str | None = None) -> None:  # fmt: skip
    con.execute(
        f"INSERT INTO lake.{layout.EVENTS} VALUES (?, ?, ?, ?, ?, ?, ?, now())",
        [record.load_id, record.source, record.table, event, reason, qtable, run_id],
    )


def record_gate(
    con: duckdb.DuckDBPyConnection, verdicts: list[tuple[BatchRecord, bool]], run_id: str | None
) -> None:
    """The raw gate's verdicts, all in one commit."""
    if not verdicts:
        return

    @in_transaction
    def write() -> None:
        with transaction(con):
            for record, passed in verdicts:
                _event(con, record, "gate_passed" if passed else "gate_failed", run_id=run_id)

    write()
    for record, passed in verdicts:
        record.gate = "passed" if passed else "failed"


def key_match(keys: list[str], left: str, right: str) -> str:
    return " AND ".join(f"{left}.{quote_ident(k)} = {right}.{quote_ident(k)}" for k in keys)
