"""Run ingest: every declared table, in parallel, each input landed once and atomically."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import duckdb
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from ingest.cdc.diff import SnapshotDiffSource
from ingest.config import IngestSettings, SourceConfig, TableConfig
from ingest.errors import IngestError, reason
from ingest.report import IngestReport, TableReport, with_runbook
from ingest.select import select_tables
from ingest.sources import KINDS, Extract
from lake import (
    LINEAGE_COLUMNS,
    BatchRecord,
    Lake,
    NewBatch,
    SchemaConflict,
    StatesRead,
    TableState,
    commit_batch,
    describe_change,
    ensure_schemas,
    layout,
    new_load_id,
)
from lake.duck import quote_ident, quote_str

log = logging.getLogger("lakehouse.ingest")


def _columns(con: duckdb.DuckDBPyConnection, uri: str) -> list[list[str]]:
    rows = con.execute(
        f"DESCRIBE FROM read_parquet({quote_str(uri)}, hive_partitioning = false)"
    ).fetchall()
    return [[r[0], r[1]] for r in rows if r[0] not in LINEAGE_COLUMNS]


def _schema_policy(
    src: SourceConfig, tbl: TableConfig, state: TableState, columns: list[list[str]], where: str
) -> tuple[str | None, str | None]:
    """(what changed, why the batch is set aside whole) under the source's policy."""
    before = state.columns
    if before is None or columns == before:
        return (describe_change(before, columns) if before is None else None), None
    change = describe_change(before, columns)
    if src.schema_policy == "freeze":
        raise IngestError(src.name, tbl.name, f"schema changed ({change}) and the source's "
                          "schema_policy is freeze: batch rejected; fix the source or set "
                          "schema_policy: evolve", where)  # fmt: skip
    if src.schema_policy == "quarantine":
        log.warning("%s.%s: %s: batch quarantined (%s)", src.name, tbl.name, where, change)
        return change, f"schema changed: {change}"
    log.info("%s.%s: schema evolved: %s", src.name, tbl.name, change)
    return change, None


_STORE_BLINK = re.compile(
    r"HTTP (?:Error: .*?returned HTTP )?5\d\d|Could not connect|Connection (?:refused|reset)|"
    r"Could not establish|Unable to connect|timed out|EndpointConnectionError|SlowDown",
    re.IGNORECASE,
)


def _through_blinks(lake: Lake, where: str, land: Callable[[], BatchRecord]) -> BatchRecord:
    """`land` a batch, again from its input while an S3 lake's store blinks (restarting,
    5xx, unreachable) within its retry deadline: a batch is all or nothing, so trying
    again never doubles rows. DuckDB retries a request, not a multipart upload a 500
    broke."""
    s3 = lake.settings.s3
    if s3 is None:
        return land()

    def blinked(exc: BaseException) -> bool:
        return bool(_STORE_BLINK.search(f"{type(exc).__name__}: {exc}"))

    def told(retry: RetryCallState) -> None:
        error = retry.outcome.exception() if retry.outcome else None
        log.warning("%s: the lake's store did not answer (%s); trying again",
                    where, reason(error) if error else "")  # fmt: skip

    for attempt in Retrying(
        retry=retry_if_exception(blinked), stop=stop_after_delay(s3.retry_deadline_s),
        wait=wait_exponential(multiplier=0.25, max=8), before_sleep=told, reraise=True,
    ):  # fmt: skip
        with attempt:
            return land()
    raise AssertionError("unreachable")  # pragma: no cover


def _land(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    src: SourceConfig,
    tbl: TableConfig,
    state: TableState,
    extract: Extract,
    run_id: str | None,
) -> BatchRecord:
    """Write the extract's file, then commit it (see `lake.commit`)."""
    load_id = new_load_id(extract.fingerprint)
    key = layout.batch_file_key(src.name, tbl.name, load_id)
    lake.storage.ensure_parent(key)
    uri = lake.uri(key)
    written = None
    try:
        try:
            from ingest.land import write_batch  # (pyarrow: only when something lands)

            written = write_batch(con, extract.open(con), uri, load_id, extract.description)
            columns = _columns(con, uri)
            watermark = extract.watermark
            if extract.watermark_column and watermark is None:
                row = con.execute(
                    f"SELECT max({quote_ident(extract.watermark_column)})::VARCHAR "
                    f"FROM read_parquet({quote_str(uri)}, hive_partitioning = false)"
                ).fetchone()
                watermark = row[0] if row and row[0] is not None else state.watermark
        except duckdb.Error as exc:
            raise IngestError(src.name, tbl.name, reason(exc), extract.description) from exc
        if written.rows == 0:  # no values: its sniffed types say nothing about the table
            change, divert, columns = None, None, []
        else:
            change, divert = _schema_policy(src, tbl, state, columns, extract.description)
        new = NewBatch(
            load_id, src.name, tbl.name, extract.input_key or extract.description,
            extract.fingerprint, extract.description, key, written.rows, columns,
            extract.input, f"SELECT * FROM {written.rejects_table}" if written.rejects_table
            else None, written.rejected, state.watermark, watermark, tbl.disposition(src.kind),
            list(tbl.primary_key), divert, change, run_id, sniffed=src.kind in ("csv", "json"),
        )  # fmt: skip
        try:
            return commit_batch(con, lake.storage, state, new)
        except SchemaConflict as exc:
            if src.schema_policy == "freeze":
                raise IngestError(src.name, tbl.name, f"{exc}; schema_policy is freeze",
                                  extract.description) from None  # fmt: skip
            new.divert = f"schema changed: {exc}; release it after changing the table"
            log.warning("%s.%s: %s: batch quarantined (%s)", src.name, tbl.name,
                        extract.description, exc)  # fmt: skip
            return commit_batch(con, lake.storage, state, new)
    except BaseException:
        try:
            lake.storage.delete(key)  # never committed: no table references it
        except Exception as exc:  # (the store is down: `lakehouse maintain` deletes it later)
            log.warning("%s.%s: could not delete %s: %s", src.name, tbl.name, key, reason(exc))
        raise
    finally:
        if written is not None and written.rejects_table:
            con.execute(f"DROP TABLE IF EXISTS {written.rejects_table}")


def ingest_table(
    lake: Lake,
    src: SourceConfig,
    tbl: TableConfig,
    base_dir: Path,
    shared: duckdb.DuckDBPyConnection,
    states: StatesRead,
    run_id: str | None = None,
    timeout_s: float | None = None,
) -> TableReport:
    """Land a table's new inputs; `shared` is the run's DuckDB database (this worker
    opens its own connection, with its own transactions and temporary tables, to it).
    `states`: the batch log as the run read it before its tables started. `timeout_s`:
    interrupt its DuckDB work after that long (what was committed stays)."""
    report = TableReport(src.name, tbl.name)
    started = time.monotonic()
    con = shared.cursor()
    expired = threading.Event()

    def stop() -> None:
        expired.set()
        con.interrupt()

    timer = threading.Timer(timeout_s, stop) if timeout_s else None
    if timer:
        timer.daemon = True
        timer.start()
    try:
        with lake.table_lock(src.name, tbl.name):  # one writer per table
            state = states.take(con, src.name, tbl.name)
            held = {b.fingerprint: b for b in state.batches if not b.in_raw_zone}
            kind = SnapshotDiffSource if tbl.cdc else KINDS[src.kind]
            source = kind(src, tbl, lake, base_dir)
            for extract in source.extracts(con, state):
                if extract.fingerprint in held:
                    waiting = held[extract.fingerprint]
                    report.waiting.append(waiting.load_id)
                    log.warning(
                        "%s.%s: %s is the input of quarantined batch %s (%s): fix the source, "
                        "or `lakehouse quarantine release %s`", src.name, tbl.name,
                        extract.description, waiting.load_id, waiting.reason, waiting.load_id,
                    )  # fmt: skip
                    continue
                t0 = time.monotonic()
                record = _through_blinks(
                    lake,
                    f"{src.name}.{tbl.name}: {extract.description}",
                    lambda: _land(con, lake, src, tbl, state, extract, run_id),  # noqa: B023
                )
                report.batches.append(record)
                log.info(
                    "%s.%s: landed %s: %s rows%s in %.1fs",
                    src.name, tbl.name, extract.description, f"{record.landed_rows:,}",
                    f" ({record.quarantined:,} quarantined)" if record.quarantined else "",
                    time.monotonic() - t0,
                )  # fmt: skip
    except Exception as exc:  # a source failing entirely must not stop the others
        error = exc if isinstance(exc, IngestError) else None
        if expired.is_set():  # (the interrupt surfaces as whatever query it stopped)
            error = IngestError(src.name, tbl.name, f"did not finish in {timeout_s:g} s "
                                "(ingest.table_timeout_s): stopped; its batch in flight was "
                                "not committed")  # fmt: skip
        report.error = with_runbook(src, error or IngestError(src.name, tbl.name, reason(exc)))
        log.error("%s", report.error)  # one line; the traceback for a debugging session
        log.debug("%s.%s failed", src.name, tbl.name, exc_info=not error)
    finally:
        if timer:
            timer.cancel()
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
    on_table: Callable[[TableReport, int], None] | None = None,
) -> IngestReport:
    """Land every chosen table's new input, `settings.workers` tables at a time.
    `on_table(report, total)` is called as each table finishes (progress)."""
    settings = settings or IngestSettings()
    # one DuckDB database for the run, the lake attached once, the memory budget shared by
    # every worker (each worker its own connection to it)
    shared = lake.connect(memory_limit=f"{settings.memory_limit_mb}MB")
    shared.execute("SET preserve_insertion_order = false")
    try:
        chosen, failed = select_tables(lake, sources, base_dir, only, shared)
        workers = max(1, min(settings.workers, len(chosen)))
        # each source's schema first, in one commit: two workers creating it at once
        # would conflict and wait out DuckLake's retries
        ensure_schemas(shared, sorted({s.name for s, _ in chosen}))
        if not only:  # pushed sources: their tables exist before their first event
            from ingest.stream.land import ensure_tables, streams_of

            ensure_tables(shared, list(streams_of(sources).values()))
        # change data capture: one drain per source, for all its `cdc` tables at once,
        # even when only some were asked for (its slot moves past what all of them hold)
        by_slot = {s.name: (s, [t for t in s.tables if t.reads_log(s)])
                   for s, t in chosen if t.reads_log(s)}  # fmt: skip
        states = StatesRead(shared)  # (a run with nothing new reads the log once)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
            futures = [
                pool.submit(
                    lambda *a: [ingest_table(*a)],
                    lake,
                    s,
                    t,
                    base_dir,
                    shared,
                    states,
                    run_id,
                    settings.table_timeout_s,
                )
                for s, t in chosen
                if not t.reads_log(s)
            ]
            if by_slot:
                from ingest.cdc.run import capture_source  # (psycopg: only for CDC)

                futures += [
                    pool.submit(capture_source, lake, s, ts, base_dir, shared, run_id)
                    for s, ts in by_slot.values()
                ]
            reports: list[TableReport] = []
            total = len(chosen)
            for done in as_completed(futures):
                for report in done.result():
                    reports.append(report)
                    if on_table is not None:
                        on_table(report, total)
            order = {(s.name, t.name): i for i, (s, t) in enumerate(chosen)}
            reports.sort(key=lambda r: order.get((r.source, r.table), 0))
    finally:
        shared.close()
    return IngestReport(failed + reports)
