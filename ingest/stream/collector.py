"""The collector's core, shared by the HTTP server and the MQTT subscribers: check events
against their stream's schema, append them to the write-ahead log, and land the log in
micro-batches, one committer at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ingest.config import SourceConfig
from ingest.stream import wal
from ingest.stream.land import TOPIC, ensure_tables, land_segment, streams_of
from ingest.stream.options import CollectorSettings
from ingest.stream.schema import Validator
from lake import Lake
from lake.batches import in_transaction
from lake.failpoints import failpoint

log = logging.getLogger("lakehouse.collect")
MAX_RAW = 1 << 20
"""A refused event is kept up to this many bytes."""


class Overloaded(Exception):
    """The lake is behind: the client should retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the lake is behind; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class Metrics:
    accepted: int = 0
    rejected: int = 0
    landed: int = 0
    duplicates: int = 0
    batches: int = 0
    throttled: int = 0
    commit_errors: int = 0
    last_commit_s: float = 0.0
    last_error: str | None = None
    started: float = field(default_factory=time.monotonic)


@dataclass
class Outcome:
    accepted: int
    refused: list[tuple[int, str]]
    ticket: int


class Collector:
    def __init__(
        self, lake: Lake, sources: list[SourceConfig], settings: CollectorSettings, log_dir: Path
    ) -> None:
        self.lake = lake
        self.settings = settings
        self.streams = streams_of(sources)
        self.validators = {key: Validator(st.table) for key, st in self.streams.items()}
        self.log = wal.Log(log_dir)
        self.metrics = Metrics()
        self._con: Any = None
        self._flushed = time.monotonic()
        self._tasks: list[asyncio.Task] = []
        self._stopping = asyncio.Event()
        inflight = [s.mqtt.max_inflight for s in sources if s.mqtt is not None]
        self._ack_limit = max(1, min(inflight) // 2) if inflight else settings.max_batch_events
        """Unacknowledged messages a batch may hold: a broker stops sending at max_inflight."""

    # -- start and stop -------------------------------------------------------------------

    def open(self) -> None:
        """Attach the lake, create the streams' tables, and land what a previous run left."""
        self._con = self.lake.connect()
        ensure_tables(self._con, list(self.streams.values()), self.settings.inline_rows)
        for seg_dir in wal.leftover(self.log.root):
            if seg_dir == self.log.current.dir:
                continue
            seg_id = seg_dir.name.removesuffix(wal.SUFFIX)
            landed = land_segment(
                self._con, seg_dir, seg_id, self.streams, self.settings.dedupe_window
            )
            log.info(
                "replayed segment %s: %s",
                seg_id,
                "in the lake already" if landed.skipped else f"{landed.rows}",
            )
            shutil.rmtree(seg_dir)

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.log.sync_forever()),
            asyncio.create_task(self._commit_forever()),
        ]

    async def stop(self) -> None:
        """Land everything accepted, then stop (the log is empty afterwards)."""
        self._stopping.set()
        if self._tasks:
            syncer, committer = self._tasks
            await committer  # (it finishes the micro-batch it is landing, if any)
            syncer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await syncer
        await self.log.sync_now()
        self.log.seal()
        try:
            while self.log.sealed:
                await self._land_first()
        except Exception as exc:  # the lake is down: the log keeps them for the next start
            log.error(
                "stopping with %s events not landed (kept in %s): %s",
                self.log.pending(),
                self.log.root,
                exc,
            )
        self.log.close()
        if self._con is not None:
            self._con.close()

    # -- accepting ------------------------------------------------------------------------

    def check_capacity(self) -> None:
        pending = self.log.pending()
        if pending >= self.settings.max_pending_events:
            self.metrics.throttled += 1
            rate = self.metrics.landed / max(time.monotonic() - self.metrics.started, 1)
            raise Overloaded(max(1, min(30, round(pending / max(rate, 1)))))

    def accept(
        self,
        source: str,
        table: str,
        events: list[Any],
        where: str,
        ack: Callable[[], None] | None = None,
        topics: list[str] | None = None,
    ) -> Outcome:
        """Check events and append them to the log; await `log.durable(outcome.ticket)`
        before telling the sender. `events` items are parsed JSON, or `Unparsed`; `ack` is
        called once they are in the lake; `topics`: each event's MQTT topic."""
        validator = self.validators[(source, table)]
        good: list[bytes] = []
        refused: list[tuple[int, str]] = []
        bad: list[bytes] = []
        for i, event in enumerate(events):
            reason = event.reason if isinstance(event, Unparsed) else validator.check(event)
            if reason is None:
                if topics is not None:
                    event[TOPIC] = topics[i]
                good.append(orjson.dumps(event))
            else:
                refused.append((i, reason))
                raw = event.raw if isinstance(event, Unparsed) else orjson.dumps(event).decode()
                bad.append(
                    orjson.dumps(
                        {
                            "source": source,
                            "table": table,
                            "where": f"{where} {topics[i]}" if topics else where,
                            "index": i,
                            "reason": reason,
                            "raw": raw[:MAX_RAW],
                        }
                    )
                )
        files: dict[str, bytes] = {}
        if good:
            files[wal.stream_file(source, table)] = b"\n".join(good) + b"\n"
        if bad:
            files[wal.REJECTS] = b"\n".join(bad) + b"\n"
        ticket = self.log.append(files, len(good), len(bad), ack) if files or ack else 0
        self.metrics.accepted += len(good)
        self.metrics.rejected += len(bad)
        return Outcome(len(good), refused, ticket)

    # -- landing --------------------------------------------------------------------------

    def _due(self) -> bool:
        cur, s = self.log.current, self.settings
        return not cur.empty and (
            cur.age() >= s.max_batch_s
            or cur.events >= s.max_batch_events
            or (bool(cur.acks) and cur.events + cur.rejected >= self._ack_limit)
        )

    async def _commit_forever(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            if self._due():
                self.log.seal()
            if not self.log.sealed:
                await self._maybe_flush()
                await asyncio.sleep(0.01)
                continue
            seg = self.log.sealed[0]
            try:
                await self._land_first()
                backoff = 0.5
            except Exception as exc:  # the lake is unreachable: keep the log, try again
                self.metrics.commit_errors += 1
                self.metrics.last_error = str(exc).splitlines()[0] if str(exc) else repr(exc)
                log.error(
                    "micro-batch %s not landed (%d events kept in the log), retrying in %.1f s: %s",
                    seg.id,
                    seg.events,
                    backoff,
                    self.metrics.last_error,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                backoff = min(backoff * 2, 30)

    async def _land_first(self) -> None:
        seg = self.log.sealed[0]
        await self.log.durable(seg.last_gen)  # (its appends are on disk)
        started = time.monotonic()
        landed = await asyncio.to_thread(
            land_segment, self._con, seg.dir, seg.id, self.streams, self.settings.dedupe_window
        )
        failpoint("stream_after_commit")
        for ack in seg.acks:
            ack()
        self.log.sealed.remove(seg)
        seg.delete()
        self.metrics.batches += 1
        self.metrics.landed += sum(landed.rows.values())
        self.metrics.duplicates += landed.duplicates
        self.metrics.last_commit_s = time.monotonic() - started
        self.metrics.last_error = None

    async def _maybe_flush(self) -> None:
        """Inlined micro-batches to Parquet, small files merged: readers go on reading."""
        if time.monotonic() - self._flushed < self.settings.flush_every_s:
            return
        self._flushed = time.monotonic()
        try:
            await asyncio.to_thread(self.flush)
        except Exception as exc:
            log.warning("background flush failed (retried later): %s", exc)

    def flush(self) -> None:
        @in_transaction
        def call(sql: str) -> None:
            self._con.execute(sql).fetchall()

        for st in self.streams.values():
            call(
                f"CALL ducklake_flush_inlined_data('lake', schema_name => '{st.source.name}', "
                f"table_name => '{st.table.name}')"
            )
        call("CALL ducklake_merge_adjacent_files('lake')")

    def status(self) -> dict[str, Any]:
        m = self.metrics
        return {
            "accepted": m.accepted,
            "rejected": m.rejected,
            "landed": m.landed,
            "duplicates_dropped": m.duplicates,
            "batches": m.batches,
            "throttled": m.throttled,
            "pending": self.log.pending(),
            "lag_s": round(self.log.oldest_age(), 3),
            "last_commit_s": round(m.last_commit_s, 3),
            "commit_errors": m.commit_errors,
            "last_error": m.last_error,
        }


@dataclass
class Unparsed:
    """An event that is not JSON: refused with its text."""

    raw: str
    reason: str
