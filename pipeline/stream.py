"""`lakehouse stream`: keep the real-time marts fresh as events land.

The marts tagged `real_time` in dbt (`config: {tags: [real_time]}`) are rebuilt whenever
a raw table upstream of them gets a new batch (the collector's micro-batches, CDC,
ingest), then gated, then published: they at the new snapshot, every other mart at the
snapshot it was published at (see `lake.publish`). A cycle holds the lake's run lock,
so it never overlaps a `lakehouse run`; readers are never blocked by either.

dbt runs in this process (`dbtRunner`) with the manifest parsed once: a cycle pays for
the models' SQL, not for dbt's start-up and parse (about 5 s a process).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lake import Holder, layout
from lake.duck import quote_str
from lake.publish import publications, publish_marts
from pipeline.config import Project
from pipeline.errors import ConfigError
from pipeline.transform import DbtResult, dbt_env, ensure_streams

log = logging.getLogger("lakehouse.stream")
TAG = "real_time"


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


class DbtSession:
    """dbt in this process, the project parsed once."""

    def __init__(self, project: Project) -> None:
        from dbt.cli.main import dbtRunner

        env = dbt_env(project)
        env["DBT_TARGET_PATH"] = str(project.warehouse_dir / "dbt" / "stream-target")
        os.environ.update(env)  # (profiles.yml reads them at every invocation)
        self.flags = ["--project-dir", str(project.dbt_project_dir),
                      "--profiles-dir", str(project.dbt_project_dir), "--quiet"]  # fmt: skip
        parsed = dbtRunner().invoke(["parse", *self.flags])
        if not parsed.success or parsed.result is None:
            raise ConfigError(f"dbt parse failed: {parsed.exception or 'see dbt logs'}")
        manifest: Any = parsed.result  # (a Manifest, after `parse`)
        self.manifest = manifest
        self.runner = dbtRunner(manifest=manifest)

    def tagged(self, tag: str) -> list[str]:
        return sorted(n.name for n in self.manifest.nodes.values()
                      if n.resource_type == "model" and tag in n.tags)  # fmt: skip

    def upstream_sources(self, models: list[str]) -> list[tuple[str, str]]:
        """The raw tables (source, table) the models read, through any number of models."""
        nodes = self.manifest.nodes
        todo = [uid for uid, n in nodes.items() if n.resource_type == "model" and n.name in models]
        seen: set[str] = set()
        found: set[tuple[str, str]] = set()
        while todo:
            uid = todo.pop()
            if uid in seen:
                continue
            seen.add(uid)
            if uid in self.manifest.sources:
                src = self.manifest.sources[uid]
                found.add((src.source_name, src.name))
            elif uid in nodes:
                todo += nodes[uid].depends_on.nodes
        return sorted(found)

    def build(self, select: str) -> DbtResult:
        try:
            res = self.runner.invoke(["build", "--select", select, *self.flags])
        finally:
            _release_build_db()
        result = DbtResult(["dbt", "build", "--select", select], 0 if res.success else 1)
        for r in getattr(res.result, "results", None) or []:
            status, uid = str(r.status), r.node.unique_id
            if status in ("error", "fail", "runtime error"):
                result.failures.append(f"{uid}: {(r.message or '').strip()}")
            elif status == "warn":
                result.warnings.append(f"{uid}: {(r.message or '').strip()}")
            elif uid.startswith("model.") and status == "success":
                result.models += 1
            elif status == "pass":
                result.tests_passed += 1
        if not res.success and not result.failures:
            result.failures.append(str(res.exception or "dbt build failed"))
        return result


def _release_build_db() -> None:
    """Close dbt-duckdb's database (it keeps it open for the process's next invocation):
    between cycles a `lakehouse run` in another process must be able to open it."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager as Manager

    with Manager._LOCK:
        env, Manager._ENV = Manager._ENV, None
        if env is not None:
            env.close()


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
    session = DbtSession(project)
    marts = session.tagged(TAG)
    if not marts:
        raise ConfigError(f"no dbt model is tagged {TAG!r}: add `config: {{tags: [{TAG}]}}` "
                          "to the marts to keep fresh")  # fmt: skip
    watched = session.upstream_sources(marts)
    log.info("keeping %s fresh: they read %d raw tables", ", ".join(marts), len(watched))
    con = project.lake.session()
    seen: tuple[int, Any] | None = None
    try:
        while not stop.is_set():
            now = _changes(con, watched)
            if now == seen:
                stop.wait(poll_s)
                continue
            cycle = Cycle(f"stream-{datetime.now(UTC):%Y%m%dT%H%M%S%f}",
                          now[0] - (seen[0] if seen else 0), marts)  # fmt: skip
            with project.lake.run_lock(Holder(cycle.cycle_id), wait_s):
                _cycle(project, session, con, cycle, gate)
            seen = now
            if on_cycle:
                on_cycle(cycle)
    finally:
        con.close()


def _cycle(project: Project, session: DbtSession, con: Any, cycle: Cycle, gate: bool) -> None:
    t0 = time.monotonic()
    built = session.build(f"tag:{TAG}")
    cycle.seconds["build"] = round(time.monotonic() - t0, 3)
    if not built.ok:
        cycle.failures = built.failures
        log.error("%s: build failed, the published marts stay as they are: %s",
                  cycle.cycle_id, "; ".join(built.failures))  # fmt: skip
        return
    from lake.publish import current_snapshot

    cycle.snapshot = current_snapshot(con)
    if gate:
        from pipeline.gates import check_marts

        t1 = time.monotonic()
        result = check_marts(project, cycle.snapshot, only=cycle.marts)
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
    publish_marts(con, snapshots, cycle.cycle_id)
    cycle.published = True
    cycle.seconds["publish"] = round(time.monotonic() - t2, 3)
