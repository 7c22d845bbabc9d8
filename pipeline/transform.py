"""Run dbt (`dbt build`) against the project's lake, with the one set of lake settings."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from lake import extensions
from pipeline.config import Project


@dataclass
class DbtResult:
    command: list[str]
    returncode: int
    models: int = 0
    tests_passed: int = 0
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    output: str = ""
    freshness: dict[str, dict[str, object]] = field(default_factory=dict)
    """`build(freshness=True)`: dbt's source freshness after the build (`read_freshness`)."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.failures


def dbt_env(project: Project) -> dict[str, str]:
    """Everything `dbt_project/profiles.yml` and the source definitions read."""
    env = dict(os.environ)
    extension_dir = extensions.install()
    env.update(
        LAKEHOUSE_LAKE_URL=project.lake.settings.url,
        LAKEHOUSE_DUCKLAKE=project.lake.settings.ducklake_uri,
        LAKEHOUSE_BUILD_DB=str(project.build_db),
        LAKEHOUSE_EXTENSION_DIR=str(extension_dir),
        # the files' signatures were checked once (`lake.extensions`): not on every LOAD
        LAKEHOUSE_EXTENSIONS_VERIFIED=str(extensions.verified(extension_dir)),
        DBT_TARGET_PATH=str(project.dbt_target),
        DBT_LOG_PATH=str(project.warehouse_dir / "dbt" / "logs"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        # lakehouse's own macros, a local package (`lakehouse init` projects use it)
        LAKEHOUSE_DBT_PACKAGE=str(Path(__file__).parent / "dbt_package"),
    )
    if project.lake.settings.catalog_path is not None:  # (see lake.dbt_plugin)
        env["LAKEHOUSE_COMMIT_LOCK"] = str(project.lake.settings.catalog_path)
    if project.lake.settings.s3 is not None:
        env.update(project.lake.settings.s3.dbt_env())
    return env


_NOT_SOURCES = {"target", "logs", "dbt_packages", ".user.yml"}


def source_files(folder: Path) -> list[Path]:
    """The files of a dbt project (or a suites folder) that a build depends on: what dbt
    writes (`target/`, `logs/`, installed packages) left out."""
    if not folder.is_dir():
        return []
    files = (p for p in sorted(folder.rglob("*")) if p.is_file())
    return [p for p in files if not _NOT_SOURCES.intersection(p.relative_to(folder).parts)]


def run_dbt(
    project: Project,
    args: list[str],
    quiet: bool = True,
    timeout_s: float | None = None,
    then: list[list[str]] | None = None,
) -> DbtResult:
    """Run dbt in its own process; with `quiet=False` its log is streamed as it runs (each
    model as it finishes). `timeout_s`: stop it after that long (a failure, said so).
    `then`: more dbt commands for the same process once `args` succeeded
    (`pipeline.dbt_main`); the result is that of `args`."""
    project.warehouse_dir.mkdir(parents=True, exist_ok=True)
    dirs = ["--project-dir", str(project.dbt_project_dir),
            "--profiles-dir", str(project.dbt_project_dir)]  # fmt: skip
    commands = [[*command, *dirs] for command in [args, *(then or [])]]
    cmd = [sys.executable, "-m", "pipeline.dbt_main", json.dumps(commands)]
    lines: list[str] = []
    proc = subprocess.Popen(cmd, env=dbt_env(project), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    killed = threading.Event()

    def stop() -> None:
        killed.set()
        proc.kill()

    timer = threading.Timer(timeout_s, stop) if timeout_s else None
    if timer:
        timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if not quiet:
                sys.stdout.write(line)
                sys.stdout.flush()
        returncode = proc.wait()
    finally:
        if timer:
            timer.cancel()
    result = DbtResult(cmd, returncode, output="".join(lines))
    if killed.is_set():
        result.failures.append(f"dbt {args[0]} did not finish in {timeout_s:g} s: stopped "
                               "(warehouse.dbt_timeout_s)")  # fmt: skip
        return result
    _read_run_results(project, result)
    if returncode != 0 and not result.failures:
        tail = [ln for ln in result.output.splitlines() if ln.strip()][-5:]
        result.failures.append(" / ".join(tail) or f"dbt exited {returncode}")
    return result


def ensure_deps(project: Project) -> None:
    """`dbt deps` when the dbt project declares packages and they changed since the last
    install (or were never installed)."""
    from pipeline.errors import StageFailed

    declared = [p for p in ("packages.yml", "dependencies.yml")
                if (project.dbt_project_dir / p).exists()]  # fmt: skip
    if not declared:
        return
    digest = hashlib.sha256(b"".join((project.dbt_project_dir / p).read_bytes()
                                     for p in declared)).hexdigest()  # fmt: skip
    stamp = project.warehouse_dir / "dbt" / "packages.sha256"
    installed = project.dbt_project_dir / "dbt_packages"
    if installed.is_dir() and stamp.exists() and stamp.read_text() == digest:
        return
    result = run_dbt(project, ["deps"])
    if not result.ok:
        raise StageFailed("build", "dbt deps: " + "; ".join(result.failures))
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)


def _describe_node(uid: str, manifest: dict) -> str:
    """`test relationships(order_id -> stg_shop__orders.order_id) on stg_shop__order_items`
    rather than dbt's hashed test name."""
    node = manifest.get("nodes", {}).get(uid) or manifest.get("unit_tests", {}).get(uid) or {}
    kind = uid.split(".")[0]
    meta = node.get("test_metadata") or {}
    if kind == "test" and meta:
        kwargs = meta.get("kwargs", {})
        column = kwargs.get("column_name") or ", ".join(kwargs.get("columns") or [])
        sources = node.get("sources") or []
        target = (node.get("attached_node") or "").split(".")[-1] or (
            f"source {'.'.join(sources[0])}" if sources else node.get("name", "")
        )
        others = {k: v for k, v in kwargs.items() if k not in ("model", "column_name", "columns")}
        detail = ", ".join([column] * bool(column) + [f"{k}={v!r}" for k, v in others.items()])
        if meta.get("name") == "relationships":
            to = str(kwargs.get("to", "")).replace("ref('", "").replace("')", "")
            detail = f"{column} -> {to}.{kwargs.get('field')}"
        elif meta.get("name") == "accepted_values":
            detail = f"{column} in {kwargs.get('values')}"
        return f"test {meta.get('name')}({detail}) on {target}"
    return f"{kind} {node.get('name') or uid.split('.')[-1]}"


def _read_run_results(project: Project, result: DbtResult) -> None:
    target = project.dbt_target
    path = target / "run_results.json"
    if not path.exists():
        return
    body = json.loads(path.read_text())
    manifest_path = target / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for node in body.get("results", []):
        uid: str = node.get("unique_id", "")
        kind = uid.split(".")[0]
        status = node.get("status")
        message = (node.get("message") or "").strip().replace("\n", " ")
        if status in ("error", "fail", "runtime error"):
            # a test may say what to do about it: config: {meta: {action: ...}}
            node_meta = (manifest.get("nodes", {}).get(uid) or {}).get("config", {}).get("meta")
            action = (node_meta or {}).get("action")
            message += f". {action}" if action else ""
            if kind == "test" and status == "fail" and node.get("compiled_code"):
                message += _failing_rows(project, node["compiled_code"])
            result.failures.append(f"{_describe_node(uid, manifest)}: {message}")
        elif status == "warn":
            result.warnings.append(f"{_describe_node(uid, manifest)}: {message}")
        elif kind == "model" and status == "success":
            result.models += 1
        elif kind in ("test", "unit_test") and status == "pass":
            result.tests_passed += 1


def _failing_rows(project: Project, sql: str, limit: int = 3) -> str:
    """`; first failing rows: {...}` from the test's own query, run again on the build as
    dbt left it (empty if it cannot run: the message still names the test)."""
    import duckdb

    try:
        con = project.lake.connect(project.build_db, read_only=True, lake_read_only=True)
    except duckdb.Error:
        return ""
    try:
        cur = con.execute(f"SELECT * FROM ({sql}) LIMIT {limit}")
        names = [d[0] for d in cur.description or []]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    except duckdb.Error:
        return ""
    finally:
        con.close()
    return f"; first failing rows: {rows}" if rows else ""


FRESHNESS = ["source", "freshness"]


def read_freshness(project: Project) -> dict[str, dict[str, object]]:
    """What `dbt source freshness` found: per source table with a declared freshness, dbt's
    verdict (pass, warn, error) and the newest data's age. Stale sources are data, not a
    failed build: the run's monitor alerts on them (`pipeline.monitor`)."""
    path = project.dbt_target / "sources.json"
    if not path.exists():
        return {}
    found: dict[str, dict[str, object]] = {}
    for r in json.loads(path.read_text()).get("results", []):
        name = ".".join(str(r.get("unique_id", "")).split(".")[-2:])
        age = r.get("max_loaded_at_time_ago_in_s")
        found[name] = {"status": r.get("status"), "max_loaded_at": r.get("max_loaded_at"),
                       "age_s": round(age) if isinstance(age, int | float) else None}  # fmt: skip
    return found


def docs_site(project: Project) -> Path:
    """`dbt docs generate --static`: the site as one page, manifest and catalog inlined
    (`static_index.html`), so it opens from disk: a browser blocks `index.html` from
    fetching `manifest.json` over file://. The folder also serves over HTTP."""
    from pipeline.errors import StageFailed

    result = run_dbt(project, ["docs", "generate", "--static"])
    if not result.ok:
        raise StageFailed("docs", "dbt docs generate: " + "; ".join(result.failures))
    return project.dbt_target / "static_index.html"


_LOST_RACE = ("database is locked", "Transaction conflict", "Failed to commit DuckLake")


def _lost_a_race(failure: str) -> bool:
    """A model whose commit lost a race with another writer of the lake catalog (an ingest
    committing at the same moment): running it again is safe and succeeds."""
    return any(s in failure for s in _LOST_RACE)


def ensure_streams(project: Project) -> None:
    """The pushed sources' raw tables exist (empty until `lakehouse collect` lands their
    first events), so that models reading them build before that."""
    from ingest.stream.land import ensure_tables, streams_of

    streams = streams_of(project.spec.sources)
    if streams:
        con = project.lake.connect()
        try:
            ensure_tables(con, list(streams.values()))
        finally:
            con.close()


def build(
    project: Project,
    select: str | None = None,
    quiet: bool = True,
    exclude: str | None = None,
    extra: list[str] | None = None,
    freshness: bool = False,
) -> DbtResult:
    """`dbt build` (after `dbt deps` if the packages changed); `extra`: more dbt flags
    (`--full-refresh`, `--vars ...`, `--target ...`). Models whose commit lost a race with
    another lake writer are run again (`dbt retry`, which reruns the failed and skipped
    nodes only), up to three times. `freshness`: then `dbt source freshness`, in the
    build's process when it succeeds at once (`result.freshness`)."""
    ensure_deps(project)
    ensure_streams(project)
    args = ["build"] + (["--select", *select.split()] if select else [])
    args += ["--exclude", *exclude.split()] if exclude else []
    args += extra or []
    timeout_s = project.spec.warehouse.dbt_timeout_s
    sources_json = project.dbt_target / "sources.json"
    if freshness:
        sources_json.unlink(missing_ok=True)  # (this build's verdicts, or none)
    then = [FRESHNESS] if freshness else None
    result = run_dbt(project, args, quiet=quiet, timeout_s=timeout_s, then=then)
    for attempt in range(3):
        if result.ok or not all(_lost_a_race(f) for f in result.failures):
            break
        time.sleep(0.5 * 2**attempt)
        again = run_dbt(project, ["retry"], quiet=quiet, timeout_s=timeout_s)
        again.models += result.models
        again.tests_passed += result.tests_passed
        again.warnings = result.warnings + again.warnings
        result = again
    if freshness and result.ok:
        if not sources_json.exists():  # (after a retry)
            run_dbt(project, FRESHNESS, timeout_s=timeout_s)
        result.freshness = read_freshness(project)
    return result


def test_everything(project: Project, quiet: bool = True) -> DbtResult:
    """Every dbt data test over every row (`lakehouse check --full`, weekly on the
    schedule): a build's own tests check only what it changed."""
    ensure_deps(project)
    args = ["test", "--vars", "{full_tests: true}"]
    return run_dbt(project, args, quiet=quiet, timeout_s=project.spec.warehouse.dbt_timeout_s)
