"""What an ingest run reports: per table, the batches it landed or set aside, and why a
table failed (with its source's runbook)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.config import SourceConfig
from lake import BatchRecord


@dataclass
class TableReport:
    source: str
    table: str
    batches: list[BatchRecord] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    """Quarantined batches whose input is still the same (not landed again)."""
    error: str | None = None
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(b.landed_rows for b in self.batches)

    @property
    def quarantined(self) -> int:
        return sum(b.quarantined for b in self.batches)


@dataclass
class IngestReport:
    tables: list[TableReport]

    @property
    def ok(self) -> bool:
        return all(t.error is None for t in self.tables)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def failures(self) -> list[str]:
        return [t.error for t in self.tables if t.error]

    @property
    def quarantined_batches(self) -> list[BatchRecord]:
        """Batches set aside whole by this run (e.g. a schema change under `quarantine`)."""
        return [b for t in self.tables for b in t.batches if not b.in_raw_zone]


def with_runbook(src: SourceConfig, exc: Exception) -> str:
    return f"{exc} [runbook: {src.runbook}]" if src.runbook else str(exc)
