"""lake: where and how bytes are stored (local folder or S3), atomically.

Public entry point: `Lake`, which bundles the settings, the storage and DuckDB access.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import duckdb

from lake import layout
from lake.commit import Written, commit_batch, open_table, recover
from lake.config import LakeSettings, S3Settings
from lake.duck import connect
from lake.errors import InvalidName, LakeConfigError, LakeError
from lake.state import (
    BatchRecord,
    TableState,
    all_states,
    load_state,
    mark_gate,
    quarantine_batch,
)
from lake.storage import LocalStorage, S3Storage, Storage, open_storage


@dataclass
class Lake:
    """The lake as every other stage sees it."""

    settings: LakeSettings

    @cached_property
    def storage(self) -> Storage:
        return open_storage(self.settings)

    def connect(
        self,
        database: str | Path = ":memory:",
        read_only: bool = False,
        memory_limit: str | None = None,
        threads: int | None = None,
    ) -> duckdb.DuckDBPyConnection:
        return connect(self.settings, database, read_only, memory_limit, threads)

    def uri(self, key: str) -> str:
        return self.storage.uri(key)

    def raw_glob_uri(self, source: str, table: str) -> str:
        return self.storage.uri(layout.raw_glob(source, table))

    def has_data(self, source: str, table: str) -> bool:
        return bool(load_state(self.storage, source, table).batches)


__all__ = [
    "BatchRecord",
    "InvalidName",
    "Lake",
    "LakeConfigError",
    "LakeError",
    "LakeSettings",
    "LocalStorage",
    "S3Settings",
    "S3Storage",
    "Storage",
    "TableState",
    "Written",
    "all_states",
    "commit_batch",
    "layout",
    "load_state",
    "mark_gate",
    "open_table",
    "quarantine_batch",
    "recover",
]
