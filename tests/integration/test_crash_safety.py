"""A batch is all or nothing, and re-running never duplicates rows: real kills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import yaml

from lake import load_state
from pipeline.config import Project, load_project
from pipeline.run import run_pipeline
from tests.integration.helpers import raw_rows

BIG_ROWS = 4_000_000


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "events.csv"
    duckdb.sql(
        f"""COPY (SELECT range AS event_id, 'user_' || (range % 9973) AS user_name,
                         range * 0.37 AS amount, TIMESTAMP '2026-01-01' + to_seconds(range) AS ts,
                         md5(range::VARCHAR) AS payload
                  FROM range({BIG_ROWS})) TO '{path}' (HEADER)"""
    )
    return path


def _project(root: Path, big_csv: Path, lake_url: str | None, env: dict[str, str]) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    spec = {
        "lake": {"url": lake_url or str(root / "lake")},
        "warehouse": {"dir": str(root / "warehouse")},
        "ingest": {"workers": 1, "memory_limit_mb": 512},
        "sources": [
            {"name": "big", "kind": "csv", "tables": [{"name": "events", "path": str(big_csv)}]}
        ],
    }
    (root / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    return load_project(root / "lakehouse.yml", env=env)


@pytest.fixture
def crash_project(lake_kind, tmp_path, big_csv, request) -> tuple[Project, dict[str, str]]:
    if lake_kind == "local":
        return _project(tmp_path, big_csv, None, {}), {}
    bucket, env = request.getfixturevalue("s3_bucket")
    url = f"s3://{bucket}/crash"
    return _project(tmp_path, big_csv, url, {**env, "LAKEHOUSE_LAKE_URL": url}), {
        **env,
        "LAKEHOUSE_LAKE_URL": url,
    }


def _start_ingest(project: Project, env: dict[str, str], failpoint: str | None = None):
    full_env = {**os.environ, **env}
    if failpoint:
        full_env["LAKEHOUSE_FAILPOINT"] = failpoint
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "--project", str(project.path), "ingest"],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _mid_batch(project: Project) -> bool:
    """True once the batch is being written: its intent is recorded and, locally, the
    hidden temp file exists."""
    state = load_state(project.lake.storage, "big", "events")
    if state.pending is None:
        return False
    if project.lake.settings.is_s3:
        return True  # DuckDB's multipart upload of the staging object is under way
    return any((Path(project.lake.settings.url) / "raw").rglob(".*.tmp"))


def test_kill_mid_batch_leaves_nothing_visible_and_rerun_lands_exactly_once(crash_project):
    project, env = crash_project
    proc = _start_ingest(project, env)
    deadline = time.monotonic() + 60
    while not _mid_batch(project):
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, "ingest never started writing"
        time.sleep(0.02)
    time.sleep(0.3)  # well inside the multi-second COPY
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    # the batch was cut off mid-write: readers see nothing, the intent is still pending
    assert raw_rows(project, "big", "events") == 0
    state = load_state(project.lake.storage, "big", "events")
    assert state.pending is not None and state.batches == []

    record = run_pipeline(project, stages=("ingest",))
    ingest = record.stage("ingest")
    assert ingest is not None
    assert ingest.details["tables"]["big.events"]["recovered"] == "discarded"
    assert raw_rows(project, "big", "events") == BIG_ROWS
    state = load_state(project.lake.storage, "big", "events")
    assert state.pending is None and len(state.batches) == 1
    # nothing left behind by the killed writer
    if project.lake.settings.is_s3:
        assert list(project.lake.storage.list("_staging")) == []
    else:
        assert not any(Path(project.lake.settings.url).rglob(".*.tmp"))


@pytest.mark.parametrize(
    ("failpoint", "visible_after_crash", "recovery"),
    [("before_publish", 0, "discarded"), ("after_publish", BIG_ROWS, "rolled-forward")],
)
def test_crash_around_the_commit_point(crash_project, failpoint, visible_after_crash, recovery):
    project, env = crash_project
    proc = _start_ingest(project, env, failpoint)
    proc.wait(timeout=300)
    assert proc.returncode == 86  # the failpoint's exit: no cleanup ran
    assert raw_rows(project, "big", "events") == visible_after_crash

    record = run_pipeline(project, stages=("ingest",))
    ingest = record.stage("ingest")
    assert ingest is not None
    assert ingest.details["tables"]["big.events"]["recovered"] == recovery
    assert raw_rows(project, "big", "events") == BIG_ROWS  # never duplicated
    state = load_state(project.lake.storage, "big", "events")
    assert len(state.batches) == 1 and state.batches[0].rows == BIG_ROWS
    assert state.pending is None
