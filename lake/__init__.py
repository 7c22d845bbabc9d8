"""lake: where and how data is stored: Parquet on a local folder or S3, as DuckLake tables.

Public entry point: `Lake`, which bundles the settings, the storage and DuckDB access.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import duckdb

from lake import layout
from lake.batches import (
    BatchRecord,
    StatesRead,
    TableState,
    all_states,
    ensure_schemas,
    load_state,
    record_gate,
)
from lake.catalog import ensure_catalog
from lake.commit import (
    LINEAGE_COLUMNS,
    NewBatch,
    SchemaConflict,
    commit_batch,
    describe_change,
    new_load_id,
    quarantine_batch,
    release_batch,
)
from lake.config import LakeSettings, S3Settings
from lake.duck import connect
from lake.errors import InvalidName, LakeConfigError, LakeError
from lake.locks import Holder, LockTimeout, RunLocked, run_lock, table_lock
from lake.storage import LocalStorage, S3Storage, Storage, open_storage

_root_lock = threading.Lock()


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
        attach: bool = True,
        snapshot: int | None = None,
        lake_read_only: bool = False,
    ) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the lake attached as `lake` (its own tables created on
        first use); `snapshot` attaches it read-only as of that snapshot."""
        con = connect(self.settings, database, read_only, memory_limit, threads, attach, snapshot,
                      lake_read_only)  # fmt: skip
        if attach and snapshot is None and not lake_read_only:
            ensure_catalog(con, self.settings.catalog)
        return con

    def session(self) -> duckdb.DuckDBPyConnection:
        """A cursor of this process's own connection to the lake (attached once, ~0.1 s
        saved per call), for short catalog reads and commits: the batch log, gate verdicts,
        publications. Each cursor has its own transactions and sees other processes'
        commits. Do not ATTACH, SET or USE on it: those would change every cursor's
        database; take `connect()` for that."""
        with _root_lock:
            root = self.__dict__.get("_root")
            if root is None:
                root = self.__dict__["_root"] = self.connect()
        return root.cursor()

    def uri(self, key: str) -> str:
        return self.storage.uri(key)

    def states(self, source: str | None = None, table: str | None = None) -> list[TableState]:
        """Every raw table's state (or one table's), from the batch log."""
        con = self.session()
        try:
            return all_states(con, source, table)
        finally:
            con.close()

    def table_lock(
        self, source: str, table: str, timeout_s: float = 600
    ) -> contextlib.AbstractContextManager[None]:
        """Hold while writing a raw table (see `lake.locks`)."""
        return table_lock(self.settings, source, table, timeout_s)

    def run_lock(
        self, holder: Holder, wait_s: float = 0
    ) -> contextlib.AbstractContextManager[None]:
        """Hold for a whole pipeline run: one at a time per lake (see `lake.locks`)."""
        return run_lock(self.settings, holder, wait_s)


__all__ = [
    "LINEAGE_COLUMNS",
    "BatchRecord",
    "Holder",
    "InvalidName",
    "Lake",
    "LakeConfigError",
    "LakeError",
    "LakeSettings",
    "LocalStorage",
    "LockTimeout",
    "NewBatch",
    "RunLocked",
    "S3Settings",
    "S3Storage",
    "SchemaConflict",
    "StatesRead",
    "Storage",
    "TableState",
    "all_states",
    "commit_batch",
    "describe_change",
    "ensure_schemas",
    "layout",
    "load_state",
    "new_load_id",
    "quarantine_batch",
    "record_gate",
    "release_batch",
]
