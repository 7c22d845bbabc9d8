"""dbt kept warm for `lakehouse stream`: the project parsed once, each build in a fork.

A worker process (spawned clean: no DuckDB database open in it) imports dbt and parses the
project once. Each build is a `fork()` of it that runs `dbt build` with the parsed
manifest and exits: it pays for the models' SQL, not for dbt's start-up and parse (about
5 s), and its exit closes every DuckDB handle, so the build database is free for a
`lakehouse run` in between, whatever a failed build left open. (Reusing one process for
the builds instead hung after a failed model: dbt-duckdb's database could not be opened
again while a handle of the failed build was alive.)
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection
from typing import Any

from pipeline.config import Project
from pipeline.errors import ConfigError
from pipeline.transform import DbtResult, _lost_a_race, dbt_env


class DbtWorker:
    def __init__(self, project: Project, tag: str, timeout_s: float | None = None) -> None:
        env = dbt_env(project)
        env["DBT_TARGET_PATH"] = str(project.warehouse_dir / "dbt" / "stream-target")
        flags = ["--project-dir", str(project.dbt_project_dir),
                 "--profiles-dir", str(project.dbt_project_dir), "--quiet"]  # fmt: skip
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, env, flags, tag), daemon=True)
        self.proc.start()
        self.timeout_s = timeout_s
        hello = self.conn.recv()
        if "error" in hello:
            raise ConfigError(f"dbt parse failed: {hello['error']}")
        self.tagged: list[str] = hello["tagged"]
        self.sources: list[tuple[str, str]] = [tuple(s) for s in hello["sources"]]
        """The raw tables (source, table) the tagged models read, through any model."""

    def build(self, select: str) -> DbtResult:
        """`dbt build --select` in a fork of the worker."""
        return self._build(select)

    def _build(self, select: str) -> DbtResult:
        self.conn.send(select)
        pid = self.conn.recv()
        if not self.conn.poll(self.timeout_s):
            os.kill(pid, signal.SIGKILL)  # (the worker then answers for it)
        body = self.conn.recv()
        result = DbtResult(["dbt", "build", "--select", select], body["returncode"])
        result.models, result.tests_passed = body["models"], body["tests_passed"]
        result.failures, result.warnings = body["failures"], body["warnings"]
        if self.timeout_s and body["returncode"] == -signal.SIGKILL:
            result.failures.append(f"dbt build did not finish in {self.timeout_s:g} s: "
                                   "stopped (warehouse.dbt_timeout_s)")  # fmt: skip
        return result

    def close(self) -> None:
        try:
            self.conn.send(None)
            self.proc.join(30)
        finally:
            if self.proc.is_alive():
                self.proc.kill()


def _serve(conn: Connection, env: dict[str, str], flags: list[str], tag: str) -> None:
    """The worker: parse, say what is tagged, then one fork per build until told to stop."""
    os.environ.update(env)  # (profiles.yml reads them at every invocation)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # (the stream stops it, after its cycle)
    from dbt.cli.main import dbtRunner

    parsed = dbtRunner().invoke(["parse", *flags])
    if not parsed.success or parsed.result is None:
        conn.send({"error": str(parsed.exception or "see the dbt logs")})
        return
    manifest: Any = parsed.result
    tagged = sorted(n.name for n in manifest.nodes.values()
                    if n.resource_type == "model" and tag in n.tags)  # fmt: skip
    conn.send({"tagged": tagged, "sources": _upstream_sources(manifest, tagged)})
    runner = dbtRunner(manifest=manifest)
    while (select := conn.recv()) is not None:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the build
            os.close(read)
            try:
                body = _build(runner, select, flags)
            except BaseException as exc:  # (reported, never raised in a fork)
                body = {"returncode": 1, "models": 0, "tests_passed": 0, "warnings": [],
                        "failures": [f"{type(exc).__name__}: {exc}"]}  # fmt: skip
            with os.fdopen(write, "w") as out:
                json.dump(body, out)
            os._exit(0)
        os.close(write)
        conn.send(pid)
        with os.fdopen(read) as answer:
            text = answer.read()
        _, status = os.waitpid(pid, 0)
        if text:
            conn.send(json.loads(text))
        else:  # killed (timeout) or crashed
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            conn.send({"returncode": code, "models": 0, "tests_passed": 0, "warnings": [],
                       "failures": [f"the dbt build process ended with {code}"]})  # fmt: skip


def _build(runner: Any, select: str, flags: list[str], attempts: int = 6) -> dict[str, Any]:
    """`dbt build`, then `dbt retry` (the failed and skipped nodes only) while every failure
    is a commit that lost a race with another lake writer (the collector commits every
    half second; the SQLite catalog then says `database is locked`)."""
    body = _outcome(runner.invoke(["build", "--select", select, *flags]))
    for attempt in range(attempts - 1):
        if not body["failures"] or not all(_lost_a_race(f) for f in body["failures"]):
            break
        time.sleep(0.1 * 2**attempt)
        again = _outcome(runner.invoke(["retry", *flags]))
        again["models"] += body["models"]
        again["tests_passed"] += body["tests_passed"]
        body = again
    return body


def _outcome(res: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"returncode": 0 if res.success else 1, "models": 0,
                            "tests_passed": 0, "failures": [], "warnings": []}  # fmt: skip
    for r in getattr(res.result, "results", None) or []:
        status, uid = str(r.status), r.node.unique_id
        message = (r.message or "").strip()
        if status in ("error", "fail", "runtime error"):
            body["failures"].append(f"{uid}: {message}")
        elif status == "warn":
            body["warnings"].append(f"{uid}: {message}")
        elif uid.startswith("model.") and status == "success":
            body["models"] += 1
        elif status == "pass":
            body["tests_passed"] += 1
    if not res.success and not body["failures"]:
        body["failures"].append(str(res.exception or "dbt build failed"))
    return body


def _upstream_sources(manifest: Any, models: list[str]) -> list[tuple[str, str]]:
    nodes = manifest.nodes
    todo = [uid for uid, n in nodes.items() if n.resource_type == "model" and n.name in models]
    seen: set[str] = set()
    found: set[tuple[str, str]] = set()
    while todo:
        uid = todo.pop()
        if uid in seen:
            continue
        seen.add(uid)
        if uid in manifest.sources:
            found.add((manifest.sources[uid].source_name, manifest.sources[uid].name))
        elif uid in nodes:
            todo += nodes[uid].depends_on.nodes
    return sorted(found)
