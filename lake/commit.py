"""Atomic batch commits: a batch is visible entirely or not at all, and lands once.

Protocol for one batch (one input file or extract -> one Parquet object):
1. record the intent (`pending`) in the table state;
2. write the object where readers cannot see it (a hidden temp file, or an S3 multipart
   upload that has not completed), plus its quarantined rows;
3. publish it atomically (rename / upload completion) -- the commit point;
4. record the batch in the state (fingerprint, rows, watermark) and clear the intent.

A crash before 3 leaves nothing visible; `recover` removes the leftovers. A crash between
3 and 4 is rolled forward by `recover` from the object itself, so the input is not landed
a second time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from lake import layout
from lake.duck import quote_ident, quote_str
from lake.state import BatchRecord, Pending, TableState, load_state, save_state
from lake.storage import Storage

FAILPOINT_ENV = "LAKEHOUSE_FAILPOINT"  # test hook: crash at a named step (see tests)


@dataclass
class Written:
    """What a batch writer reports after writing its object."""

    rows: int
    quarantined: int = 0
    watermark: str | None = None
    divert: str | None = None
    """Set by the writer to publish the whole batch to quarantine, with this reason."""
    columns: list[list[str]] | None = None
    """The batch's columns, for the table's schema history."""


# write(data_uri, quarantine_uri, load_id) -> Written
BatchWrite = Callable[[str, str, str], Written]


def new_load_id(fingerprint: str, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S%f}-{hashlib.sha1(fingerprint.encode()).hexdigest()[:8]}"


def _failpoint(name: str) -> None:
    if os.environ.get(FAILPOINT_ENV) == name:
        os._exit(86)


def _parquet_rows(con: duckdb.DuckDBPyConnection, uri: str) -> int:
    row = con.execute(
        "SELECT coalesce(sum(num_rows), 0)::BIGINT FROM parquet_file_metadata(?)", [uri]
    ).fetchone()
    return int(row[0]) if row else 0


def describe_change(old: list[list[str]] | None, new: list[list[str]]) -> str:
    """`added x BIGINT; dropped y; z INTEGER -> VARCHAR`, or `initial`."""
    if old is None:
        return "initial"
    before = {c: t for c, t in old}
    after = {c: t for c, t in new}
    parts = [f"added {c} {t}" for c, t in after.items() if c not in before]
    parts += [f"dropped {c}" for c in before if c not in after]
    parts += [f"{c} {before[c]} -> {t}" for c, t in after.items() if c in before and before[c] != t]
    return "; ".join(parts) or "column order"


def recover(storage: Storage, con: duckdb.DuckDBPyConnection, state: TableState) -> str | None:
    """Settle a batch left pending by a crash; returns 'rolled-forward', 'discarded' or None."""
    pending = state.pending
    if pending is None:
        return None
    if storage.exists(pending.key):
        uri = storage.uri(pending.key)
        quarantined = 0
        if storage.exists(pending.quarantine_key):
            quarantined = _parquet_rows(con, storage.uri(pending.quarantine_key))
        watermark = pending.watermark
        if watermark is None and pending.watermark_column:
            w = con.execute(
                f"SELECT max({quote_ident(pending.watermark_column)})::VARCHAR "
                f"FROM read_parquet({quote_str(uri)})"
            ).fetchone()
            watermark = w[0] if w else None
        diverted = "/batches/" in pending.key and pending.key.startswith(layout.QUARANTINE)
        written = Written(_parquet_rows(con, uri), quarantined, watermark,
                          divert="diverted before a crash" if diverted else None)  # fmt: skip
        _record(state, pending, written)
        outcome = "rolled-forward"
    else:
        storage.delete(pending.quarantine_key)
        storage.cleanup_incomplete(layout.table_prefix(layout.RAW, state.source, state.table))
        state.pending = None
        outcome = "discarded"
    save_state(storage, state)
    return outcome


def _record(state: TableState, pending: Pending, written: Written) -> BatchRecord:
    record = BatchRecord(
        load_id=pending.load_id,
        key=pending.key,
        fingerprint=pending.fingerprint,
        description=pending.description,
        rows=written.rows,
        quarantined=written.quarantined,
        quarantine_key=pending.quarantine_key if written.quarantined else None,
        committed_at=datetime.now(UTC).isoformat(timespec="seconds"),
        watermark=written.watermark,
        run_id=pending.run_id,
        input=pending.input,
        diverted=written.divert,
    )
    if written.divert:  # all of it is quarantined; the watermark does not move
        record.quarantined += record.rows
        record.rows = 0
        record.watermark = None
    state.batches.append(record)
    if written.watermark is not None and not written.divert:
        state.watermark = written.watermark
    if written.columns is not None and not written.divert and written.columns != state.schema:
        state.schemas.append(
            {
                "load_id": pending.load_id,
                "columns": written.columns,
                "change": describe_change(state.schema, written.columns),
            }
        )
    state.pending = None
    return record


def commit_batch(
    storage: Storage,
    state: TableState,
    fingerprint: str,
    description: str,
    write: BatchWrite,
    watermark_column: str | None = None,
    run_id: str | None = None,
    input_meta: dict[str, Any] | None = None,
    watermark: str | None = None,
) -> BatchRecord:
    """Write and commit one batch; `state` must have been opened with `open_table`.

    The new watermark is `watermark` when the source knows it, else the max of
    `watermark_column` in the written batch (the writer reports it)."""
    if state.pending is not None:
        raise RuntimeError(f"{state.source}.{state.table}: recover the pending batch first")
    now = datetime.now(UTC)
    load_id = new_load_id(fingerprint, now)
    pending = Pending(
        load_id=load_id,
        key=layout.batch_key(state.source, state.table, now.date(), load_id),
        quarantine_key=layout.quarantine_key(state.source, state.table, now.date(), load_id),
        fingerprint=fingerprint,
        description=description,
        watermark_column=watermark_column,
        run_id=run_id,
        input=input_meta or {},
        watermark=watermark,
    )
    state.pending = pending
    save_state(storage, state)

    target = storage.begin_write(pending.key)
    storage.ensure_parent(pending.quarantine_key)
    try:
        written = write(target, storage.uri(pending.quarantine_key), load_id)
        if watermark is not None:
            written.watermark = watermark
        _failpoint("before_publish")
        if written.divert:
            pending.key = layout.quarantined_batch_key(
                state.source, state.table, now.date(), load_id
            )
            save_state(storage, state)
        storage.finish_write(pending.key, target)
    except BaseException:
        storage.abort_write(target)
        storage.delete(pending.quarantine_key)
        state.pending = None
        save_state(storage, state)
        raise
    _failpoint("after_publish")
    record = _record(state, pending, written)
    save_state(storage, state)
    return record


def open_table(
    storage: Storage, con: duckdb.DuckDBPyConnection, source: str, table: str
) -> tuple[TableState, str | None]:
    """Load a table's state and settle anything a crashed run left behind.

    Returns the state and what recovery did ('rolled-forward', 'discarded' or None)."""
    state = load_state(storage, source, table)
    return state, recover(storage, con, state)
