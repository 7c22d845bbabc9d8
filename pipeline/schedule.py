"""`lakehouse schedule`: run the pipeline on the cron expressions of lakehouse.yml, in the
foreground (for a container or a service unit).

`schedule.default` runs the whole pipeline; a source's own `schedule` ingests that source
and rebuilds the models downstream of it (then gates and publishes, as every run does).
When both are due at once, the whole run covers the source. `schedule.full_tests` (weekly
by default) runs every dbt data test over all rows, after any run due at the same time: a
build's own tests check only what it changed. Runs never overlap: they run
one after another here, and the lake's run lock keeps out runs started elsewhere (a tick
that finds the lake held waits for it up to the next tick, then is skipped, said in the
log). Cron expressions (croniter) have five fields, or six with seconds last.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from lake import RunLocked
from pipeline.config import Project
from pipeline.errors import ConfigError, StageFailed

log = logging.getLogger("lakehouse.schedule")
WHOLE = "*"
"""The name of the default schedule's job: every source."""
FULL_TESTS = "full tests"
"""The name of the job that runs every data test over all rows."""


@dataclass
class Job:
    name: str
    """A source name, or `WHOLE`."""
    cron: str
    next_at: datetime


def jobs(project: Project, now: datetime) -> list[Job]:
    """The schedules of the project, each with its next time after `now`."""
    tz = ZoneInfo(project.spec.schedule.timezone)
    crons = [(WHOLE, project.spec.schedule.default)] if project.spec.schedule.default else []
    crons += [(s.name, s.schedule) for s in project.spec.sources if s.schedule]
    if not crons:
        raise ConfigError(
            f"{project.path}: nothing to schedule: set `schedule.default` (a cron expression "
            "for the whole pipeline) or a source's `schedule`"
        )
    if project.spec.schedule.full_tests:
        crons.append((FULL_TESTS, project.spec.schedule.full_tests))
    return [Job(name, cron, _next(cron, now, tz)) for name, cron in crons]


def _next(cron: str, after: datetime, tz: ZoneInfo) -> datetime:
    return croniter(cron, after.astimezone(tz)).get_next(datetime).astimezone(UTC)


def due(jobs_: list[Job], now: datetime) -> list[str] | None:
    """What to run at `now`: None (nothing due), [] (the whole pipeline) or the sources
    whose own schedule is due."""
    names = [j.name for j in jobs_ if j.next_at <= now and j.name != FULL_TESTS]
    if not names:
        return None
    return [] if WHOLE in names else sorted(names)


def full_tests_due(jobs_: list[Job], now: datetime) -> bool:
    """Whether the full data tests are due at `now`."""
    return any(j.name == FULL_TESTS and j.next_at <= now for j in jobs_)


def advance(jobs_: list[Job], now: datetime, tz: ZoneInfo) -> None:
    """Move every job that was due to its next time after `now` (missed ticks are not
    run twice: a run that took longer than a period is followed by one run, not a burst)."""
    for job in jobs_:
        if job.next_at <= now:
            job.next_at = _next(job.cron, now, tz)


def run_schedule(
    project: Project,
    max_runs: int | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_run: Callable[[Any], None] | None = None,
) -> int:
    """Run due jobs until stopped (SIGTERM or SIGINT, after the run in progress) or until
    `max_runs` runs; returns how many ran."""
    from pipeline.run import run_pipeline

    tz = ZoneInfo(project.spec.schedule.timezone)
    pending = jobs(project, clock())
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}  # fmt: skip
    runs = 0
    try:
        while not stop.is_set() and (max_runs is None or runs < max_runs):
            upcoming = min(j.next_at for j in pending)
            for job in pending:
                if job.next_at == upcoming:
                    log.info("next: %s at %s", job.name if job.name != WHOLE else "every source",
                             job.next_at.isoformat(timespec="seconds"))  # fmt: skip
            wait = (upcoming - clock()).total_seconds()
            if wait > 0 and stop.wait(wait):
                break
            now = clock()
            only, tests = due(pending, now), full_tests_due(pending, now)
            advance(pending, now, tz)
            if only is None:
                if tests:
                    _full_tests(project, wait_s=max(0.0, (min(j.next_at for j in pending)
                                                           - clock()).total_seconds()))  # fmt: skip
                continue
            wait_s = max(0.0, (min(j.next_at for j in pending) - clock()).total_seconds())
            runs += 1
            try:
                record = run_pipeline(project, only=only or None, wait_s=wait_s)
            except RunLocked as exc:
                log.warning("skipped the run of %s: %s", only or "every source", exc)
                continue
            except StageFailed as exc:
                log.error("run of %s failed: %s", only or "every source", exc)
                continue
            except Exception:  # a scheduler outlives one bad run; the record says what broke
                log.exception("run of %s failed", only or "every source")
                continue
            log.info("run %s of %s: %s", record.run_id, only or "every source", record.status)
            if on_run:
                on_run(record)
            if tests:
                _full_tests(project, wait_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return runs


def _full_tests(project: Project, wait_s: float) -> None:
    """Every dbt data test over all rows, under the run lock; a failure is logged (and
    alerted by the next run's monitor), the scheduler goes on."""
    from lake import Holder
    from pipeline.run import new_run_id
    from pipeline.transform import test_everything

    try:
        with project.lake.run_lock(Holder(f"check-{new_run_id()}"), wait_s):
            result = test_everything(project)
    except RunLocked as exc:
        log.warning("skipped the full data tests: %s", exc)
        return
    if result.ok:
        log.info("full data tests passed: %s tests over all rows", result.tests_passed)
    else:
        log.error("full data tests failed: %s", "; ".join(result.failures))


def describe(project: Project, now: datetime, count: int = 5) -> list[tuple[datetime, str]]:
    """The next `count` runs: (when, what), for `lakehouse schedule --dry-run`."""
    tz = ZoneInfo(project.spec.schedule.timezone)
    pending = jobs(project, now)
    out: list[tuple[datetime, str]] = []
    while len(out) < count:
        at = min(j.next_at for j in pending)
        only = due(pending, at)
        if only is not None:
            out.append((at, "every source" if not only else "sources " + ", ".join(only)))
        if full_tests_due(pending, at) and len(out) < count:
            out.append((at, "every data test over all rows"))
        advance(pending, at, tz)
    return out
