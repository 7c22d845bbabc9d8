"""One writer per raw table at a time, and one pipeline run per lake, across processes.

DuckLake lets two appends to one table commit side by side, so two ingests of the same
input would both land it. Each table's writer (ingest, a quarantine, a release) holds
this lock while it decides what to land and lands it. The lock lives with the catalog:
a `flock` beside a SQLite catalog (every writer is on that host), a PostgreSQL advisory
lock for a PostgreSQL catalog. Both are released by the kernel or the server when the
holder dies, so a killed writer never leaves a stale lock.

The commit lock (`hold_commits`) is for a SQLite catalog only: one catalog transaction at
a time across processes, each held from before its first read of the catalog to its
commit. DuckLake 1.5.5 cannot commit a transaction whose read of the SQLite catalog is
older than another process's commit: SQLite answers `database is locked` without waiting
(a read-to-write upgrade of a stale WAL snapshot) and DuckLake does not retry it
(duckdb/ducklake#1309, fixed after 1.5.5). With the collector committing every half
second, every dbt model longer than that lost. PostgreSQL catalogs need no such lock.

The run lock (`run_lock`) also says who holds it: the holder's run id, host, pid and
start time are written into the lock file (or, for PostgreSQL, the locking session's
`application_name`), so a second run can name it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lake.config import LakeSettings
from lake.errors import LakeError

log = logging.getLogger("lakehouse.lake")
RUN_LOCK = "_run"
COMMITS = "_commits"
COMMIT_WAIT_S = 900.0


class LockTimeout(LakeError):
    """Another writer held the table longer than we were willing to wait."""


@dataclass
class Holder:
    """Who holds the run lock."""

    run_id: str
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def describe(self) -> str:
        return f"run {self.run_id} (pid {self.pid} on {self.host}, started {self.started_at})"


class RunLocked(LockTimeout):
    """Another pipeline run holds this lake."""

    exit_code = 75  # EX_TEMPFAIL: try again later (a scheduler or a service unit can tell)

    def __init__(self, holder: Holder | None, waited_s: float) -> None:
        self.holder = holder
        who = holder.describe() if holder else "another run (it has not said who yet)"
        waited = f" after waiting {waited_s:g} s" if waited_s else ""
        super().__init__(
            f"another run is in progress on this lake: {who}; gave up{waited} "
            "(`--wait SECONDS` waits for it)"
        )


@contextlib.contextmanager
def run_lock(settings: LakeSettings, holder: Holder, wait_s: float = 0) -> Iterator[None]:
    """Hold the lake for one pipeline run; wait up to `wait_s` for another run to finish,
    then raise `RunLocked` naming it. A lock whose holder was killed is free at once
    (the kernel or the server released it); taking one over is logged."""
    if settings.catalog_path is not None:
        with _file_run_lock(settings.catalog_path.with_suffix(".locks"), holder, wait_s):
            yield
    else:
        with _pg_run_lock(settings.catalog[len("postgres:") :], holder, wait_s):
            yield


def _open_lock_file(folder: os.PathLike[str], name: str) -> int:
    os.makedirs(folder, exist_ok=True)
    return os.open(os.path.join(folder, f"{name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)


def _flock_within(fd: int, wait_s: float, poll_s: float) -> bool:
    """Take the exclusive `flock` of `fd`, trying for up to `wait_s`; False if another
    process still holds it then."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)


def _read_holder(fd: int) -> Holder | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode(errors="replace").strip()
    try:
        return Holder(**json.loads(text)) if text else None
    except (ValueError, TypeError):
        return None


@contextlib.contextmanager
def _file_run_lock(folder: os.PathLike[str], holder: Holder, wait_s: float) -> Iterator[None]:
    fd = _open_lock_file(folder, RUN_LOCK)
    try:
        if not _flock_within(fd, wait_s, poll_s=0.2):
            raise RunLocked(_read_holder(fd), wait_s)
        left = _read_holder(fd)  # a holder that ended cleanly emptied the file
        if left is not None:
            log.warning("took over the run lock of %s: it ended without releasing it "
                        "(killed?)", left.describe())  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(holder)).encode(), 0)
        os.fsync(fd)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock


def _advisory_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"lakehouse:{name}".encode()).digest()[:8], "big",
                          signed=True)  # fmt: skip


@contextlib.contextmanager
def _pg_run_lock(dsn: str, holder: Holder, wait_s: float) -> Iterator[None]:
    """The holder is told by its session: `application_name` carries the run id and pid
    (63 characters at most), the server knows the client's address and start time."""
    import psycopg

    key = _advisory_key(RUN_LOCK)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT set_config('application_name', %s, false)",
                     [f"lakehouse run {holder.run_id} {holder.pid}"[:63]])  # fmt: skip
        t0 = time.monotonic()
        while not _pg_try(conn, key):
            if time.monotonic() - t0 >= wait_s:
                raise RunLocked(_pg_holder(conn, key), wait_s)
            time.sleep(0.2)
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [key])


def _pg_try(conn: Any, key: int) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
    return bool(row and row[0])


def _pg_holder(conn: Any, key: int) -> Holder | None:
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = conn.execute(
        "SELECT a.application_name, coalesce(host(a.client_addr), 'local socket'), "
        "a.backend_start FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s",
        [unsigned >> 32, unsigned & 0xFFFFFFFF],
    ).fetchone()
    if not row or not str(row[0]).startswith("lakehouse run "):
        return None
    _, _, run_id, pid = [*str(row[0]).split(" "), "", ""][:4]
    return Holder(run_id, str(row[1]), int(pid) if pid.isdigit() else 0,
                  row[2].isoformat(timespec="seconds"))  # fmt: skip


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
    fd = _open_lock_file(folder, name)
    try:
        if not _flock_within(fd, timeout_s, poll_s=0.05):
            raise LockTimeout(f"{name}: another writer has held this table for {timeout_s:.0f} s")
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def _pg_lock(dsn: str, name: str, timeout_s: float) -> Iterator[None]:
    import psycopg

    key = _advisory_key(name)
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


_commits_held: dict[str, list[int]] = {}  # lock file -> [fd, depth]
_commits_guard = threading.Lock()


def hold_commits(catalog: os.PathLike[str] | str, wait_s: float = COMMIT_WAIT_S) -> None:
    """Take the commit lock of the SQLite catalog `catalog` (see the module's docstring),
    waiting up to `wait_s` for another process's transaction. Re-entrant in a process:
    each hold needs a `release_commits`. The kernel releases it if the holder dies."""
    key = os.fspath(catalog)
    with _commits_guard:
        if key in _commits_held:
            _commits_held[key][1] += 1
            return
    fd = _open_lock_file(Path(key).with_suffix(".locks"), COMMITS)
    if not _flock_within(fd, wait_s, poll_s=0.005):
        os.close(fd)
        raise LockTimeout(f"{key}: another process held the catalog's commit lock for "
                          f"{wait_s:.0f} s")  # fmt: skip
    with _commits_guard:
        _commits_held[key] = [fd, 1]


def release_commits(catalog: os.PathLike[str] | str) -> None:
    """Undo one `hold_commits`; the last one releases the lock. Without a hold: nothing."""
    key = os.fspath(catalog)
    with _commits_guard:
        held = _commits_held.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            del _commits_held[key]
            os.close(held[0])  # releases the lock


def holding_commits(catalog: os.PathLike[str] | str) -> bool:
    """Whether this process holds the commit lock of `catalog`."""
    with _commits_guard:
        return os.fspath(catalog) in _commits_held
