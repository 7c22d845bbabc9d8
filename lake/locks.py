"""One writer per raw table at a time, across processes and hosts.

DuckLake lets two appends to one table commit side by side, so two ingests of the same
input would both land it. Each table's writer (ingest, a quarantine, a release) holds
this lock while it decides what to land and lands it. The lock lives with the catalog:
a `flock` beside a SQLite catalog (every writer is on that host), a PostgreSQL advisory
lock for a PostgreSQL catalog. Both are released by the kernel or the server when the
holder dies, so a killed writer never leaves a stale lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator

from lake.config import LakeSettings
from lake.errors import LakeError


class LockTimeout(LakeError):
    """Another writer held the table longer than we were willing to wait."""


@contextlib.contextmanager
def table_lock(
    settings: LakeSettings, source: str, table: str, timeout_s: float = 600
) -> Iterator[None]:
    name = f"{source}.{table}"
    if settings.catalog_path is not None:
        with _file_lock(settings.catalog_path.with_suffix(".locks"), name, timeout_s):
            yield
    else:
        with _pg_lock(settings.catalog[len("postgres:") :], name, timeout_s):
            yield


@contextlib.contextmanager
def _file_lock(folder: os.PathLike[str], name: str, timeout_s: float) -> Iterator[None]:
    os.makedirs(folder, exist_ok=True)
    fd = os.open(os.path.join(folder, f"{name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockTimeout(
                        f"{name}: another writer has held this table for {timeout_s:.0f} s"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def _pg_lock(dsn: str, name: str, timeout_s: float) -> Iterator[None]:
    import psycopg

    key = int.from_bytes(
        hashlib.sha256(f"lakehouse:{name}".encode()).digest()[:8], "big", signed=True
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"SET lock_timeout = '{int(timeout_s * 1000)}ms'")
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", [key])
        except psycopg.errors.LockNotAvailable:
            raise LockTimeout(
                f"{name}: another writer has held this table for {timeout_s:.0f} s"
            ) from None
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [key])
