"""`lakehouse stream`: keep the real-time marts fresh as events land.

The marts tagged `real_time` in dbt (`config: {tags: [real_time]}`) are rebuilt whenever
a raw table upstream of them gets a new batch (the collector's micro-batches, CDC,
ingest), then gated, then published: they at the new snapshot, every other mart at the
snapshot it was published at (see `lake.publish`). A cycle holds the lake's run lock,
so it never overlaps a `lakehouse run`; readers are never blocked by either.

dbt is kept warm (`pipeline.dbt_worker`): the project is parsed once, and a cycle pays
for the models' SQL, not for dbt's start-up and parse (about 5 s a process).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lake import Holder, layout
from lake.duck import quote_str
from lake.publish import current_snapshot, publications, publish_marts
from pipeline.config import Project
from pipeline.dbt_worker import DbtWorker
from pipeline.errors import ConfigError, StageFailed
from pipeline.transform import ensure_streams

log = logging.getLogger("lakehouse.stream")
TAG = "real_time"
RETRY_S = 30


@dataclass
class Cycle:
    """One rebuild: what it built, gated and published, and how long each step took."""

    cycle_id: str
    batches: int
    marts: list[str] = field(default_factory=list)
    snapshot: int | None = None
    published: bool = False
    failures: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _changes(con: Any, tables: list[tuple[str, str]]) -> tuple[int, Any]:
    """How many batches the watched raw tables have, and the newest one's commit time."""
    names = ", ".join(quote_str(f"{s}.{t}") for s, t in tables) or "NULL"
    row = con.execute(
        f"SELECT count(*), max(committed_at) FROM lake.{layout.BATCHES} "
        f"WHERE source || '.' || table_name IN ({names})"
    ).fetchone()
    return (int(row[0]), row[1]) if row else (0, None)


def stream(
    project: Project,
    stop: threading.Event,
    poll_s: float = 0.5,
    gate: bool = True,
    on_cycle: Callable[[Cycle], None] | None = None,
    wait_s: float = 3600,
) -> None:
    """Rebuild, gate and publish the real-time marts after every change upstream of them,
    until `stop` is set."""
    ensure_streams(project)
    session = DbtWorker(project, TAG, project.spec.warehouse.dbt_timeout_s)
    marts, watched = session.tagged, session.sources
    if not marts:
        session.close()
        raise ConfigError(f"no dbt model is tagged {TAG!r}: add `config: {{tags: [{TAG}]}}` "
                          "to the marts to keep fresh")  # fmt: skip
    log.info("keeping %s fresh: they read %d raw tables", ", ".join(marts), len(watched))
    con = project.lake.session()
    seen: tuple[int, Any] | None = None
    retry_at = math.inf  # after a failed cycle: again on new batches, or after RETRY_S
    try:
        while not stop.is_set():
            now = _changes(con, watched)
            if now == seen and time.monotonic() < retry_at:
                stop.wait(poll_s)
                continue
            cycle = Cycle(f"stream-{datetime.now(UTC):%Y%m%dT%H%M%S%f}",
                          now[0] - (seen[0] if seen else 0), marts)  # fmt: skip
            with project.lake.run_lock(Holder(cycle.cycle_id), wait_s):
                _cycle(project, session, con, cycle, gate)
            seen = now
            retry_at = math.inf if cycle.published else time.monotonic() + RETRY_S
            if on_cycle:
                on_cycle(cycle)
    finally:
        con.close()
        session.close()


def _cycle(project: Project, session: DbtWorker, con: Any, cycle: Cycle, gate: bool) -> None:
    t0 = time.monotonic()
    built = session.build(f"tag:{TAG}")
    cycle.seconds["build"] = round(time.monotonic() - t0, 3)
    if not built.ok:
        cycle.failures = built.failures
        log.error("%s: build failed, the published marts stay as they are: %s",
                  cycle.cycle_id, "; ".join(built.failures))  # fmt: skip
        return
    cycle.snapshot = current_snapshot(con)
    if gate:
        from pipeline.gates import check_marts

        t1 = time.monotonic()
        result = check_marts(project, cycle.snapshot, only=cycle.marts, changed_only=True)
        cycle.seconds["gate"] = round(time.monotonic() - t1, 3)
        if result.blocking:
            cycle.failures = [r.describe() for r in result.blocking]
            log.error("%s: mart gate failed, not published: %s", cycle.cycle_id,
                      "; ".join(cycle.failures))  # fmt: skip
            return
    t2 = time.monotonic()
    history = publications(con)
    snapshots = {**(history[-1].snapshots if history else {}),
                 **dict.fromkeys(cycle.marts, cycle.snapshot)}  # fmt: skip
    publication = publish_marts(con, snapshots, cycle.cycle_id)
    cycle.published = True
    if project.spec.serving.postgres.enabled:
        from pipeline.serve import serve_bi

        try:
            serve_bi(project, con, publication)
        except StageFailed as exc:  # the lake's marts are published; the next cycle retries
            cycle.failures = [str(exc)]
            log.error("%s: %s", cycle.cycle_id, exc)
    cycle.seconds["publish"] = round(time.monotonic() - t2, 3)
