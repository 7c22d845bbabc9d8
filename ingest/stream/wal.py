"""The collector's write-ahead log: accepted events wait here until their micro-batch
commits to the lake.

A segment is a folder `<log_dir>/<id>.seg` with one JSON Lines file per stream
(`<source>.<table>.jsonl`) and `_rejected.jsonl` for refused events. Requests append to
the open segment; a sync task fsyncs what they wrote, several requests per fsync (group
commit), and only then are they answered. The committer seals the open segment (a new
one takes the appends), lands it in one lake transaction and deletes it. After a crash
the segments left over are landed first: the batch log knows which were committed, so
none lands twice.
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import os
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

SUFFIX = ".seg"
REJECTS = "_rejected.jsonl"
_counter = itertools.count()


def stream_file(source: str, table: str) -> str:
    return f"{source}.{table}.jsonl"


def parse_stream_file(name: str) -> tuple[str, str]:
    source, table, _ = name.split(".")
    return source, table


class Segment:
    """An open or sealed segment: its files, and how many events it holds."""

    def __init__(self, root: Path, seg_id: str | None = None) -> None:
        now = datetime.now(UTC)
        self.id = seg_id or f"{now:%Y%m%dT%H%M%S%f}-{os.getpid()}-{next(_counter)}"
        self.dir = root / f"{self.id}{SUFFIX}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fds: dict[str, int] = {}
        self.events = 0
        self.rejected = 0
        self.first_at: float | None = None
        self.last_gen = 0
        self.acks: list[Callable[[], None]] = []
        """Called once the segment is in the lake (MQTT acknowledgements)."""

    def write(self, name: str, data: bytes) -> None:
        fd = self.fds.get(name)
        if fd is None:
            fd = self.fds[name] = os.open(self.dir / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    def count(self, events: int, rejected: int) -> None:
        if self.first_at is None:
            self.first_at = time.monotonic()
        self.events += events
        self.rejected += rejected

    @property
    def empty(self) -> bool:
        return not self.events and not self.rejected

    def age(self) -> float:
        return 0.0 if self.first_at is None else time.monotonic() - self.first_at

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()

    def delete(self) -> None:
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def leftover(root: Path) -> list[Path]:
    """Segments a previous collector left (crashed, or stopped with the lake down), oldest
    first, each cut back to its last whole line: a line cut short was never acknowledged."""
    found = sorted(root.glob(f"*{SUFFIX}"))
    for seg in found:
        for file in seg.glob("*.jsonl"):
            data = file.read_bytes()
            end = data.rfind(b"\n") + 1
            if end != len(data):
                with open(file, "r+b") as f:
                    f.truncate(end)
    return found


class Log:
    """The open segment, the sealed ones not yet landed, and the group fsync. Appends come
    from the event loop's thread; fsyncs run in a worker thread on duplicated fds."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise RuntimeError(
                f"{root}: another collector uses this log (collector.log_dir)"
            ) from None
        self.current = Segment(root)
        self.sealed: list[Segment] = []
        self.gen = 0
        self.synced = 0
        self._dirty: dict[str, Segment] = {}
        self._kick = asyncio.Event()
        self._done = asyncio.Condition()

    def append(
        self,
        files: dict[str, bytes],
        events: int,
        rejected: int,
        ack: Callable[[], None] | None = None,
    ) -> int:
        """Write to the open segment; returns the ticket `durable` waits for."""
        seg = self.current
        for name, data in files.items():
            seg.write(name, data)
        seg.count(events, rejected)
        if ack is not None:
            seg.acks.append(ack)
        self.gen += 1
        seg.last_gen = self.gen
        self._dirty[seg.id] = seg
        self._kick.set()
        return self.gen

    async def durable(self, ticket: int) -> None:
        async with self._done:
            await self._done.wait_for(lambda: self.synced >= ticket)

    def pending(self) -> int:
        return self.current.events + sum(s.events for s in self.sealed)

    def oldest_age(self) -> float:
        return max([s.age() for s in self.sealed] + [self.current.age()])

    def seal(self) -> Segment | None:
        """Close the open segment to appends (a new one opens) and queue it."""
        if self.current.empty:
            return None
        seg, self.current = self.current, Segment(self.root)
        self.sealed.append(seg)
        return seg

    async def sync_forever(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            await self.sync_now()

    async def sync_now(self) -> None:
        gen, segs = self.gen, list(self._dirty.values())
        self._dirty.clear()
        fds = [os.dup(fd) for s in segs for fd in s.fds.values()]
        dirs = [s.dir for s in segs] + ([self.root] if segs else [])
        await asyncio.to_thread(_fsync, fds, dirs)
        async with self._done:
            self.synced = max(self.synced, gen)
            self._done.notify_all()

    def close(self) -> None:
        for seg in [*self.sealed, self.current]:
            seg.close()
            if seg.empty:
                shutil.rmtree(seg.dir, ignore_errors=True)
        os.close(self._lock_fd)


def _fsync(fds: list[int], dirs: list[Path]) -> None:
    try:
        for fd in fds:
            os.fsync(fd)
    finally:
        for fd in fds:
            os.close(fd)
    for d in dirs:  # the files' names too
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
