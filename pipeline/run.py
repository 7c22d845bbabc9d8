"""One pipeline run: ingest -> raw gate -> dbt build -> mart gate -> publish.

Every run leaves a machine-readable record in the lake (`runs/<run_id>.json`): run id,
status, and per stage its status, timings and counts. A failing stage stops the run
with `StageFailed`; what earlier stages committed stays committed.

One run at a time per lake: a run holds the lake's run lock (`lake.locks.run_lock`), and a
second one waits up to `wait_s`, then fails naming the holder. A run that finds nothing
new (no batch landed, released or set aside since the build of the marts published now,
and the same dbt project, suites and lakehouse.yml) skips build, mart gate and publish.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from expectations import GateFailed, GateResult
from ingest import IngestReport, run_ingest
from ingest.errors import reason
from lake import Holder, layout
from lake.publish import publications, published_stack
from lake.redact import redact, redact_all
from pipeline.config import Project
from pipeline.errors import StageFailed
from pipeline.gates import check_marts, check_raw
from pipeline.serve import build_snapshot, publish, serve_bi
from pipeline.transform import build, source_files

log = logging.getLogger("lakehouse.run")
PENDING_RUNS = "runs-pending"
"""Run records the lake's store did not take, in the warehouse folder until it does."""
STAGES = ("ingest", "check_raw", "build", "check_marts", "publish")


@dataclass
class StageRecord:
    name: str
    status: str = "skipped"
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunRecord:
    run_id: str
    project: str
    lake: str
    started_at: str
    status: str = "running"
    finished_at: str | None = None
    error: str | None = None
    stages: list[StageRecord] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    """Batches this run set aside whole, each with its reason: the run says so (status
    `quarantined`, exit code 3), while the rest of the data went on."""
    inputs: dict[str, Any] = field(default_factory=dict)
    """What the build read (`inputs_mark`): a later run with the same has nothing new."""
    nothing_new_since: str | None = None
    """Set when this run skipped build, gate and publish: the run whose build is current."""
    failed_sources: list[str] = field(default_factory=list)
    """Sources that could not be ingested: the run went on without them (status
    `partial`, exit code 2), and their models were not rebuilt."""
    skipped: list[str] = field(default_factory=list)
    """What a partial run left out, and why."""
    monitor: dict[str, Any] = field(default_factory=dict)
    """Freshness and volume per raw table, and the alerts this run sent (`monitor`)."""

    def stage(self, name: str) -> StageRecord | None:
        return next((s for s in self.stages if s.name == name), None)


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def _gate_details(result: GateResult) -> dict[str, Any]:
    return {
        "expectations": len(result.results),
        "passed": sum(r.success for r in result.results),
        "failed": [r.describe() for r in result.blocking],
        "warnings": [r.describe() for r in result.warnings],
        "data_docs": str(result.docs) if result.docs else None,
        "results": [
            {
                "suite": r.suite,
                "expectation": r.expectation,
                "severity": r.severity,
                "success": r.success,
                "observed": str(r.observed) if r.observed is not None else None,
            }
            for r in result.results
        ],
    }


def _ingest_details(report: IngestReport) -> dict[str, Any]:
    return {
        "tables": {
            f"{t.source}.{t.table}": {
                "batches": len(t.batches),
                "rows": t.rows,
                "quarantined": t.quarantined,
                "waiting": t.waiting,
                "error": t.error,
                "seconds": round(t.seconds, 3),
            }
            for t in report.tables
        },
        "rows": report.rows,
    }


def inputs_mark(project: Project, con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What a build depends on, cheaply: the batch log's size (every batch landed, and
    every verdict, quarantine and release, adds a row) and a hash of the dbt project,
    the suites and lakehouse.yml."""
    row = con.execute(
        f"SELECT (SELECT count(*) FROM lake.{layout.BATCHES}), "
        f"(SELECT count(*) FROM lake.{layout.EVENTS})"
    ).fetchone()
    digest = hashlib.sha256(project.path.read_bytes())
    for folder in (project.dbt_project_dir, project.expectations_dir / "suites"):
        for path in source_files(folder):
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    batches, events = row if row else (0, 0)
    return {"batches": batches, "events": events, "code": digest.hexdigest()[:16]}


def published_record(project: Project, con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The record of the run whose marts are published now (after a rollback, the run
    rolled back to)."""
    stack = published_stack(publications(con))
    if not stack or not stack[-1].run_id:
        return None
    data = project.lake.storage.read_bytes(layout.run_key(stack[-1].run_id))
    return json.loads(data) if data else None


def run_pipeline(
    project: Project,
    stages: tuple[str, ...] = STAGES,
    only: list[str] | None = None,
    run_id: str | None = None,
    on_stage: Callable[[StageRecord], None] | None = None,
    wait_s: float = 0,
    progress: Progress | None = None,
) -> RunRecord:
    """Run `stages` in order, holding the lake's run lock (waiting up to `wait_s` for a
    run that holds it; `lake.RunLocked` names that run). Ingest alone takes no run lock:
    writers of raw tables run side by side (each table has its own lock)."""
    record = RunRecord(
        run_id=run_id or new_run_id(),
        project=project.spec.name,
        lake=project.lake.settings.url,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    if set(stages) <= {"ingest"}:
        return _run(project, record, stages, only, on_stage, progress)
    with project.lake.run_lock(Holder(record.run_id), wait_s):
        return _run(project, record, stages, only, on_stage, progress)


@dataclass
class Progress:
    """What a terminal shows while a run goes (`pipeline.cli` draws it with rich)."""

    on_table: Callable[[Any, int], None] | None = None
    """Called as each raw table's ingest finishes: (its report, tables in all)."""
    dbt_log: bool = False
    """Stream dbt's log (each model as it finishes)."""


def _run(
    project: Project,
    record: RunRecord,
    stages: tuple[str, ...],
    only: list[str] | None,
    on_stage: Callable[[StageRecord], None] | None,
    progress: Progress | None,
) -> RunRecord:
    ingest_report: IngestReport | None = None
    built: int | None = None  # the lake snapshot the build left: gated, then published

    def stage(name: str, fn: Callable[[StageRecord], None]) -> None:
        rec = StageRecord(name, status="running")
        record.stages.append(rec)
        t0 = time.monotonic()
        try:
            fn(rec)
            rec.status = "partial" if rec.status == "partial" else "passed"
        except StageFailed:
            rec.status = "failed"
            raise
        except GateFailed as exc:
            rec.status = "failed"
            raise StageFailed(name, str(exc)) from exc
        finally:
            rec.seconds = round(time.monotonic() - t0, 3)
            if on_stage:
                on_stage(rec)

    def do_ingest(rec: StageRecord) -> None:
        nonlocal ingest_report
        ingest_report = run_ingest(
            project.lake,
            project.spec.sources,
            project.base_dir,
            project.spec.ingest,
            only=only,
            run_id=record.run_id,
            on_table=progress.on_table if progress else None,
        )
        rec.details = _ingest_details(ingest_report)
        record.quarantined += [
            f"{b.source}.{b.table} batch {b.load_id}: {b.reason}"
            for b in ingest_report.quarantined_batches
        ] + [
            f"{t.source}.{t.table} batch {load_id}: still quarantined, and its input has not "
            f"changed: fix the source or `lakehouse quarantine release {load_id}`"
            for t in ingest_report.tables
            for load_id in t.waiting
        ]
        if not ingest_report.ok:
            if all(t.error for t in ingest_report.tables):
                raise StageFailed("ingest", "; ".join(ingest_report.failures()))
            rec.status = "partial"  # the other sources go on
            record.failed_sources = sorted({t.source for t in ingest_report.tables if t.error})
            record.skipped += [
                f"{t.source}.{t.table} not ingested: {t.error}"
                for t in ingest_report.tables
                if t.error
            ]
            if "build" in stages:
                record.skipped += [f"models downstream of source {s} not rebuilt (they keep "
                                   "their last build)" for s in record.failed_sources]  # fmt: skip

    def do_check_raw(rec: StageRecord) -> None:
        result = check_raw(project, run_id=record.run_id)
        rec.details = _gate_details(result)
        result.raise_for_failures()

    def do_build(rec: StageRecord) -> None:
        nonlocal built
        if not record.inputs:  # (the nothing-new check, right before, measured them)
            with contextlib.closing(project.lake.session()) as con:
                record.inputs = inputs_mark(project, con)
        # `only` some sources: the models downstream of them; a failed source's are left out
        select = " ".join(f"source:{name}+" for name in only or [])
        exclude = " ".join(f"source:{s}+" for s in record.failed_sources)
        quiet = not (progress and progress.dbt_log)
        # dbt's unit tests pin the models' logic to fixed rows: they belong to changing
        # the models (`lakehouse build`, `lakehouse check --full`), not to each day's data
        result = build(project, select=select or None, exclude=exclude or None, quiet=quiet,
                       extra=["--exclude-resource-type", "unit_test"], freshness=True)  # fmt: skip
        rec.details = {
            "models": result.models,
            "tests_passed": result.tests_passed,
            "failures": result.failures,
            "warnings": result.warnings,
        }
        if not result.ok:
            raise StageFailed("build", "dbt: " + "; ".join(result.failures))
        built = rec.details["snapshot"] = build_snapshot(project)
        rec.details["source_freshness"] = result.freshness

    def do_check_marts(rec: StageRecord) -> None:
        nonlocal built
        built = built if built is not None else build_snapshot(project)
        result = check_marts(project, built, changed_only=True)
        rec.details = {"snapshot": built, **_gate_details(result)}
        result.raise_for_failures()

    def do_publish(rec: StageRecord) -> None:
        published = publish(project, record.run_id, snapshot=built)
        rec.details = {"marts": published.marts, "snapshot": published.build_snapshot}

    steps = {
        "ingest": do_ingest,
        "check_raw": do_check_raw,
        "build": do_build,
        "check_marts": do_check_marts,
        "publish": do_publish,
    }

    def nothing_new() -> str | None:
        """The run whose published build already has every input of this one."""
        if not {"build", "publish"} <= set(stages):
            return None
        with contextlib.closing(project.lake.session()) as con:
            last = published_record(project, con)
            if last is None or not last.get("inputs") or last.get("failed_sources"):
                return None  # (a partial build left some models behind: build them now)
            record.inputs = inputs_mark(project, con)
        return str(last["run_id"]) if last["inputs"] == record.inputs else None

    try:
        for name in STAGES:
            if name not in stages:
                continue
            if name == "build":
                record.nothing_new_since = nothing_new()
            if record.nothing_new_since and name in ("build", "check_marts", "publish"):
                since = {"nothing_new_since": record.nothing_new_since}
                skipped = StageRecord(name, "skipped", details=since)
                record.stages.append(skipped)
                if on_stage:
                    on_stage(skipped)
                if name == "publish":
                    serve_bi(project)  # catches up after a failed copy; else a no-op
                continue
            stage(name, steps[name])
        record.status = (
            "partial" if record.failed_sources
            else "quarantined" if record.quarantined else "passed"
        )  # fmt: skip
    except StageFailed as exc:
        record.status, record.error = "failed", str(exc)
        raise
    except Exception as exc:
        record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        record.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        _monitor(project, record)
        save_run(project, record)
    return record


def _monitor(project: Project, record: RunRecord) -> None:
    """Freshness, volume and alerts; never the reason a run fails."""
    from pipeline import monitor

    try:
        as_dict = asdict(record)
        measured, firing, healthy = monitor.evaluate(
            project, as_dict, last_runs(project, limit=50), datetime.now(UTC)
        )
        sent = monitor.notify(project, record.run_id, firing, healthy)
        record.monitor = {**measured, "firing": [a.key for a in firing],
                          "alerted": [asdict(a) for a in sent]}  # fmt: skip
    except Exception as exc:  # (the lake's store down, say: the record still gets saved)
        log.error("monitoring after run %s failed: %s", record.run_id, reason(exc))
        log.debug("monitoring failed", exc_info=True)


def save_run(project: Project, record: RunRecord) -> None:
    """Into the lake; when its store does not answer (the outage that failed the run,
    maybe), into the warehouse folder, sent on by the next run that can. Every run leaves
    its record."""
    data = json.dumps(redact_all(asdict(record)), indent=1, default=str).encode()
    pending = project.warehouse_dir / PENDING_RUNS
    try:
        project.lake.storage.write_bytes(layout.run_key(record.run_id), data)
    except Exception as exc:
        pending.mkdir(parents=True, exist_ok=True)
        (pending / f"{record.run_id}.json").write_bytes(data)
        log.error("run %s: the lake did not take its record (%s): kept in %s until it does",
                  record.run_id, redact(reason(exc)), pending)  # fmt: skip
        return
    for path in sorted(pending.glob("*.json")) if pending.is_dir() else []:
        project.lake.storage.write_bytes(layout.run_key(path.stem), path.read_bytes())
        path.unlink()


def last_runs(project: Project, limit: int = 5) -> list[dict[str, Any]]:
    """The latest run records, those still waiting in the warehouse folder included."""
    pending = project.warehouse_dir / PENDING_RUNS
    local = {p.stem: p for p in pending.glob("*.json")} if pending.is_dir() else {}
    keys = sorted(project.lake.storage.list(layout.RUNS))
    ids = sorted({k.rsplit("/", 1)[-1].removesuffix(".json") for k in keys} | set(local))
    runs = []
    for run_id in ids[-limit:]:
        data = (local[run_id].read_bytes() if run_id in local
                else project.lake.storage.read_bytes(layout.run_key(run_id)))  # fmt: skip
        if data:
            runs.append(json.loads(data))
    return runs
