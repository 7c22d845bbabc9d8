"""Errors raised while extracting and landing sources."""

from __future__ import annotations

from lake.redact import redact


class IngestError(Exception):
    """An ingest failure, always naming the source and table (and file or batch if known)."""

    def __init__(self, source: str, table: str, cause: str, where: str | None = None) -> None:
        cause, where = redact(cause), (redact(where) if where else where)
        self.source, self.table, self.cause, self.where = source, table, cause, where
        at = f" ({where})" if where else ""
        super().__init__(f"source {source!r}, table {table!r}{at}: {cause}")
