"""Run ingest: every declared table, in parallel, each input landed once and atomically."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ingest.config import IngestSettings, SourceConfig, TableConfig
from ingest.errors import IngestError
from ingest.land import write_batch
from ingest.sources import KINDS
from lake import BatchRecord, Lake, commit_batch, open_table

log = logging.getLogger("lakehouse.ingest")


@dataclass
class TableReport:
    source: str
    table: str
    batches: list[BatchRecord] = field(default_factory=list)
    recovered: str | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(b.rows for b in self.batches)

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


def _select(
    sources: list[SourceConfig], only: list[str] | None
) -> list[tuple[SourceConfig, TableConfig]]:
    """`only` holds `source` or `source.table` names."""
    chosen = []
    for src in sources:
        for tbl in src.tables:
            if not only or src.name in only or f"{src.name}.{tbl.name}" in only:
                chosen.append((src, tbl))
    if only:
        known = {s.name for s in sources} | {
            f"{s.name}.{t.name}" for s in sources for t in s.tables
        }
        unknown = sorted(set(only) - known)
        if unknown:
            raise IngestError(
                unknown[0].split(".")[0], unknown[0], f"not declared in lakehouse.yml: {unknown}"
            )
    return chosen


def ingest_table(
    lake: Lake,
    src: SourceConfig,
    tbl: TableConfig,
    base_dir: Path,
    memory_limit_mb: int,
    run_id: str | None = None,
) -> TableReport:
    report = TableReport(src.name, tbl.name)
    started = time.monotonic()
    con = lake.connect(memory_limit=f"{memory_limit_mb}MB")
    con.execute("SET preserve_insertion_order = false")
    try:
        state, report.recovered = open_table(lake.storage, con, src.name, tbl.name)
        if report.recovered:
            log.warning(
                "%s.%s: batch left by a crashed run %s", src.name, tbl.name, report.recovered
            )
        source = KINDS[src.kind](src, tbl, lake, base_dir)
        for extract in source.extracts(con, state):
            t0 = time.monotonic()

            def write(data_uri: str, q_uri: str, load_id: str, _e=extract) -> object:
                try:
                    return write_batch(con, _e.open(con), data_uri, q_uri, load_id, _e.description)
                except duckdb.Error as exc:
                    raise IngestError(src.name, tbl.name, _first_line(exc), _e.description) from exc

            record = commit_batch(
                lake.storage,
                state,
                extract.fingerprint,
                extract.description,
                write,  # type: ignore[arg-type]
                run_id=run_id,
                input_meta=extract.input,
            )
            report.batches.append(record)
            log.info(
                "%s.%s: landed %s: %s rows%s in %.1fs",
                src.name,
                tbl.name,
                extract.description,
                f"{record.rows:,}",
                f" ({record.quarantined:,} quarantined)" if record.quarantined else "",
                time.monotonic() - t0,
            )
    except IngestError as exc:
        report.error = str(exc)
        log.error("%s", exc)
    except Exception as exc:  # a source failing entirely must not stop the others
        report.error = str(IngestError(src.name, tbl.name, _first_line(exc)))
        log.exception("%s", report.error)
    finally:
        con.close()
        report.seconds = time.monotonic() - started
    return report


def run_ingest(
    lake: Lake,
    sources: list[SourceConfig],
    base_dir: Path,
    settings: IngestSettings | None = None,
    only: list[str] | None = None,
    run_id: str | None = None,
) -> IngestReport:
    settings = settings or IngestSettings()
    chosen = _select(sources, only)
    workers = max(1, min(settings.workers, len(chosen)))
    per_worker_mb = max(64, settings.memory_limit_mb // workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
        futures = [
            pool.submit(ingest_table, lake, s, t, base_dir, per_worker_mb, run_id)
            for s, t in chosen
        ]
        reports = [f.result() for f in futures]
    return IngestReport(reports)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
