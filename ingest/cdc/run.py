"""Entry points of change data capture: `lakehouse run` (one drain per CDC source, among
the other tables), `lakehouse cdc` (drain once, or follow) and `lakehouse status` (each
slot's lag). The drain itself is `ingest.cdc.capture`."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path

import duckdb

from ingest.cdc import slot as pg_slot
from ingest.cdc.capture import Capture, slot_name
from ingest.config import SourceConfig, TableConfig
from ingest.errors import IngestError, reason
from ingest.report import TableReport, with_runbook
from ingest.sources.database import database_url
from lake import Lake

log = logging.getLogger("lakehouse.cdc")


def capture_source(
    lake: Lake,
    src: SourceConfig,
    tables: list[TableConfig],
    base_dir: Path,
    shared: duckdb.DuckDBPyConnection,
    run_id: str | None = None,
) -> list[TableReport]:
    """Drain one source's CDC tables (what `lakehouse run` and `lakehouse cdc` call): a
    report per table; a failure fails them all (the slot stays where the lake is)."""
    started = time.monotonic()
    capture = Capture(lake, src, tables, base_dir, run_id)
    con = shared.cursor()
    error = None
    try:
        capture.drain(con)
    except Exception as exc:
        error = exc if isinstance(exc, IngestError) else IngestError(src.name, "(cdc)", reason(exc))
        log.error("%s", error)
        log.debug("%s: cdc failed", src.name, exc_info=not isinstance(exc, IngestError))
    finally:
        con.close()
    seconds = time.monotonic() - started
    return [
        TableReport(
            src.name,
            t.name,
            capture.landed[t.name],
            error=with_runbook(src, error) if error else None,
            seconds=seconds,
        )
        for t in capture.tables
    ]


def cdc_sources(
    sources: list[SourceConfig], only: list[str] | None = None
) -> list[tuple[SourceConfig, list[TableConfig]]]:
    """The sources with `cdc` tables (those named in `only`, if given) and those tables."""
    chosen = []
    for src in sources:
        tables = [t for t in src.tables if t.reads_log(src)]
        if tables and (not only or src.name in only):
            chosen.append((src, tables))
    if only:
        unknown = sorted(set(only) - {s.name for s, _ in chosen})
        if unknown:
            raise IngestError(unknown[0], "(cdc)", "no such source with `cdc: true` tables")
    return chosen


def run_cdc(
    lake: Lake,
    sources: list[SourceConfig],
    base_dir: Path,
    only: list[str] | None = None,
    stop: threading.Event | None = None,
    memory_limit_mb: int = 1024,
) -> dict[str, int]:
    """Drain every CDC source once, or, with `stop`, again and again until it is set.
    Returns the changes landed per `source.table`."""
    chosen = cdc_sources(sources, only)
    captures = [Capture(lake, src, tables, base_dir) for src, tables in chosen]
    con = lake.connect(memory_limit=f"{memory_limit_mb}MB")
    con.execute("SET preserve_insertion_order = false")  # (as ingest: bounded COPY memory)
    try:
        while True:
            started = time.monotonic()
            for capture in captures:
                capture.drain(con, stop)
            if stop is None or stop.is_set():
                break
            poll = min(c.options.poll_s for c in captures) if captures else 1.0
            stop.wait(max(0.0, poll - (time.monotonic() - started)))
    finally:
        con.close()
    return {
        f"{c.src.name}.{name}": sum(r.rows for r in records)
        for c in captures
        for name, records in c.landed.items()
    }


def slot_report(sources: list[SourceConfig], base_dir: Path) -> list[dict[str, object]]:
    """Each CDC source's slot: how far it has confirmed, how much WAL it holds back
    (`lakehouse status`). A source that cannot be reached says why."""
    out: list[dict[str, object]] = []
    for src, _ in cdc_sources(sources):
        name = slot_name(src)
        entry: dict[str, object] = {"source": src.name, "slot": name}
        try:
            with contextlib.closing(pg_slot.connect(database_url(src, base_dir), src.name)) as pg:
                info = pg_slot.slot_info(pg, name)
        except Exception as exc:
            entry["error"] = reason(exc)
        else:
            if info is None:
                entry["error"] = "no such slot yet (the first `lakehouse cdc` creates it)"
            else:
                assert src.database is not None
                limit = src.database.cdc.lag_warning_mb * 2**20
                entry.update(confirmed=pg_slot.lsn_text(info.confirmed), lag_bytes=info.lag_bytes,
                             lagging=info.lag_bytes > limit)  # fmt: skip
        out.append(entry)
    return out
