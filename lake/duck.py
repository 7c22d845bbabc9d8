"""The one place that opens a DuckDB connection and attaches the lake for everyone else.

The connection comes configured: extensions from the PyPI layout (no downloads), for an
S3 lake a temporary S3 secret built from the one `S3Settings`, and the DuckLake catalog
attached as `lake` (`lake.<source>.<table>` are the raw tables).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from pathlib import Path

import duckdb
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential

from lake import extensions
from lake.config import LakeSettings

ALIAS = "lake"
INLINE_ROWS = 100
"""Batches up to this many rows are kept in the catalog (DuckLake data inlining) instead
of a Parquet file each; `lakehouse maintain` flushes them to files."""
SQLITE_BUSY_TIMEOUT_MS = 5000
"""How long a SQLite catalog's writer waits for another's commit (the collector commits
every half second) before `database is locked`; the retries above it still apply."""
_wal_done: set[Path] = set()
_wal_lock = threading.Lock()


def connection_config(
    memory_limit: str | None = None, threads: int | None = None
) -> dict[str, str | bool | int | float | list[str]]:
    directory = extensions.install()
    config: dict[str, str | bool | int | float | list[str]] = {
        "extension_directory": str(directory),
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": True,
        # each file's signature was checked once already (`lake.extensions`)
        "allow_unsigned_extensions": extensions.verified(directory),
    }
    if memory_limit:
        config["memory_limit"] = memory_limit
    if threads:
        config["threads"] = threads
    return config


def connect(
    settings: LakeSettings | None = None,
    database: str | Path = ":memory:",
    read_only: bool = False,
    memory_limit: str | None = None,
    threads: int | None = None,
    attach: bool = True,
    snapshot: int | None = None,
    lake_read_only: bool = False,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that can read and write the lake (local or S3); with `attach`,
    the lake's tables are `lake.<schema>.<table>` (read-only with `lake_read_only`, and as
    of `snapshot` if given)."""
    con = duckdb.connect(
        str(database), read_only=read_only, config=connection_config(memory_limit, threads)
    )
    con.execute("SET enable_progress_bar = false")  # a library draws no bars on stderr
    if settings is not None and settings.s3 is not None:
        con.execute(settings.s3.duckdb_secret_sql())
        con.execute(settings.s3.duckdb_retry_sql())
    if settings is not None and attach:
        attach_lake(
            con, settings, read_only=lake_read_only or snapshot is not None, snapshot=snapshot
        )
    return con


def attach_sql(
    settings: LakeSettings, alias: str = ALIAS, read_only: bool = False, snapshot: int | None = None
) -> str:
    options = [f"DATA_PATH {quote_str(settings.data_path)}"]
    if settings.catalog_path is not None:  # SQLite: wait out another process's commit
        options.append(f"META_BUSY_TIMEOUT {SQLITE_BUSY_TIMEOUT_MS}")
    if read_only:
        options.append("READ_ONLY")
    if snapshot is not None:
        options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
    return (
        f"ATTACH IF NOT EXISTS {quote_str(settings.ducklake_uri)} AS {alias} ({', '.join(options)})"
    )


def attach_lake(
    con: duckdb.DuckDBPyConnection,
    settings: LakeSettings,
    alias: str = ALIAS,
    read_only: bool = False,
    snapshot: int | None = None,
) -> None:
    """Attach the DuckLake catalog (creating it on first use)."""
    path = settings.catalog_path
    if path is not None:
        _sqlite_catalog(path, settings)
    _attach(con, attach_sql(settings, alias, read_only, snapshot))


@retry(
    retry=retry_if_exception(lambda e: "locked" in str(e) or "busy" in str(e).lower()),
    wait=wait_random_exponential(multiplier=0.05, max=1),
    stop=stop_after_attempt(20),
    reraise=True,
)
def _attach(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """A SQLite catalog answers 'locked' while another process commits: try again."""
    con.execute(sql)


def _sqlite_catalog(path: Path, settings: LakeSettings) -> None:
    """Once per process: the SQLite catalog exists, initialised by one process at a time
    (two first attaches at once would both create DuckLake's tables), and is in WAL mode:
    readers never block a commit, and a commit never waits for a long reader (the default
    rollback journal does both)."""
    with _wal_lock:
        if path in _wal_done:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{path}.init.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            con = sqlite3.connect(path, timeout=30)
            try:
                if con.execute("PRAGMA journal_mode").fetchone() != ("wal",):
                    con.execute("PRAGMA journal_mode=WAL")
                initialised = con.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'ducklake_metadata'"
                ).fetchone()
                if initialised and initialised[0] and settings.catalog_moves_with_data:
                    _follow_the_folder(con, settings.data_path)
            finally:
                con.close()
            if not initialised or not initialised[0]:
                duck = duckdb.connect(config=connection_config())
                try:
                    if settings.s3 is not None:
                        duck.execute(settings.s3.duckdb_secret_sql())
                    _attach(duck, attach_sql(settings))
                finally:
                    duck.close()
        finally:
            os.close(fd)
        _wal_done.add(path)


READ_STATEMENTS = frozenset({"SELECT", "EXPLAIN"})
"""What a reader may run (`DESCRIBE`, `SHOW`, `SUMMARIZE`, `FROM t` and `PRAGMA version`
parse as SELECT)."""


def lock_reader(con: duckdb.DuckDBPyConnection, settings: LakeSettings) -> None:
    """From here on the connection reads the lake and nothing else: no local file, URL or
    other bucket prefix (`enable_external_access` off, the lake's data path the only
    allowed directory), no extension loaded, no setting changed back. What it has
    attached stays attached; pair it with `check_read_only` on every statement, since
    the allowed directory could otherwise be written with COPY and a DETACHed lake
    attached again read-write."""
    con.execute(f"SET allowed_directories = [{quote_str(settings.data_path)}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def check_read_only(sql: str) -> None:
    """Refuse any statement but a query: COPY, ATTACH/DETACH, INSERT, CREATE, SET, CALL..."""
    for statement in duckdb.extract_statements(sql):
        kind = statement.type.name
        if kind not in READ_STATEMENTS:
            raise PermissionError(
                f"read-only: {kind} statements are refused (queries run SELECT or EXPLAIN)"
            )


def _follow_the_folder(con: sqlite3.Connection, data_path: str) -> None:
    """A local lake moved or mounted at another path (a container) carries its catalog,
    which records the old data path: point it at the folder's own (file paths inside are
    relative to it), for every tool that attaches the catalog, dbt included."""
    row = con.execute("SELECT value FROM ducklake_metadata WHERE key = 'data_path'").fetchone()
    if row and row[0] != data_path:
        with con:
            con.execute("UPDATE ducklake_metadata SET value = ? WHERE key = 'data_path'",
                        [data_path])  # fmt: skip


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
