"""Per-table ingest state, kept in the lake next to the data it describes.

`state/<source>/<table>.json` lists the committed batches (with the fingerprint of the
input each came from, so an input is landed once), the cursor watermark, and at most one
*pending* batch: the write-ahead intent recorded before a batch is written. The state
advances only after the batch's object is visible; `lake.commit.recover` settles a
pending batch left by a crash.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from lake import layout
from lake.storage import Storage

STATE_VERSION = 1


@dataclass
class BatchRecord:
    load_id: str
    key: str
    fingerprint: str
    description: str
    rows: int
    quarantined: int
    committed_at: str
    quarantine_key: str | None = None
    watermark: str | None = None
    run_id: str | None = None
    input: dict[str, Any] = field(default_factory=dict)
    """What identified the input (e.g. file size, mtime and content digest)."""
    gate: str | None = None
    """Outcome of the raw quality gate: None (not checked yet), 'passed' or 'failed'."""

    @property
    def in_raw_zone(self) -> bool:
        """Readers (staging) see it: not set aside in quarantine."""
        return self.key.startswith(layout.RAW + "/")

    diverted: str | None = None
    """Why the whole batch went to quarantine instead of raw (e.g. a schema change)."""


@dataclass
class Pending:
    load_id: str
    key: str
    quarantine_key: str
    fingerprint: str
    description: str
    watermark_column: str | None = None
    run_id: str | None = None
    input: dict[str, Any] = field(default_factory=dict)
    watermark: str | None = None


@dataclass
class TableState:
    source: str
    table: str
    batches: list[BatchRecord] = field(default_factory=list)
    watermark: str | None = None
    pending: Pending | None = None
    schemas: list[dict[str, Any]] = field(default_factory=list)
    """Schema history: {load_id, columns: [[name, type], ...], change} per version."""

    @property
    def schema(self) -> list[list[str]] | None:
        """The columns of the latest accepted batch."""
        return self.schemas[-1]["columns"] if self.schemas else None

    @property
    def fingerprints(self) -> set[str]:
        return {b.fingerprint for b in self.batches}

    @property
    def rows(self) -> int:
        return sum(b.rows for b in self.batches)

    @property
    def quarantined(self) -> int:
        return sum(b.quarantined for b in self.batches)

    @property
    def last_batch(self) -> BatchRecord | None:
        return self.batches[-1] if self.batches else None

    def to_json(self) -> bytes:
        body: dict[str, Any] = {"version": STATE_VERSION, **asdict(self)}
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> TableState:
        body = json.loads(data)
        body.pop("version", None)
        pending = body.pop("pending", None)
        batches = [BatchRecord(**b) for b in body.pop("batches", [])]
        return cls(batches=batches, pending=Pending(**pending) if pending else None, **body)


def load_state(storage: Storage, source: str, table: str) -> TableState:
    data = storage.read_bytes(layout.state_key(source, table))
    if data is None:
        return TableState(source=source, table=table)
    return TableState.from_json(data)


def save_state(storage: Storage, state: TableState) -> None:
    storage.write_bytes(layout.state_key(state.source, state.table), state.to_json())


def mark_gate(storage: Storage, source: str, table: str, load_ids: set[str], outcome: str) -> None:
    """Record the raw gate's verdict on some batches of a table."""
    state = load_state(storage, source, table)
    for batch in state.batches:
        if batch.load_id in load_ids:
            batch.gate = outcome
    save_state(storage, state)


def quarantine_batch(
    storage: Storage, source: str, table: str, load_id: str, reason: str
) -> BatchRecord:
    """Take a committed batch out of the raw zone (staging no longer reads it) into
    `quarantine/<source>/<table>/batches/`; its rows count as quarantined, with the reason.
    Safe to repeat after a crash: the state still points at the object until it moved."""
    state = load_state(storage, source, table)
    record = next(b for b in state.batches if b.load_id == load_id)
    if not record.in_raw_zone:
        return record  # already set aside
    load_date = date.fromisoformat(record.key.split("load_date=")[1][:10])
    new_key = layout.quarantined_batch_key(source, table, load_date, load_id)
    storage.move(record.key, new_key)
    record.key, record.diverted, record.gate = new_key, reason, "failed"
    record.quarantined, record.rows = record.quarantined + record.rows, 0
    save_state(storage, state)
    return record


def all_states(storage: Storage) -> list[TableState]:
    states = []
    for key in storage.list(layout.STATE):
        if key.endswith(".json"):
            data = storage.read_bytes(key)
            if data is not None:
                states.append(TableState.from_json(data))
    return sorted(states, key=lambda s: (s.source, s.table))
