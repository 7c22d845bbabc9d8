"""A batch is all or nothing, and re-running never duplicates rows: real kills.

A batch's Parquet file is written first, then added to its table in one DuckLake
transaction with its record in the batch log. A kill before that commit leaves an orphan
file no table references (`lakehouse maintain` deletes it); a kill after it leaves the
batch committed whole, and the log says its input has landed."""

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

from lake import S3Storage, layout
from pipeline.config import Project, load_project
from pipeline.run import run_pipeline
from tests.integration.helpers import assert_no_leftovers, raw_rows, table_state

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


def _table_files(project: Project) -> list[str]:
    """Every object under the table's data folder (committed or not)."""
    prefix = f"{layout.TABLES_DIR}/big/events"
    return sorted(k for k in project.lake.storage.list(prefix))


def _mid_batch(project: Project) -> bool:
    """True once the batch's file is being written: locally the file exists, on S3 its
    multipart upload is under way."""
    storage = project.lake.storage
    if isinstance(storage, S3Storage):
        return bool(storage.incomplete_uploads(layout.TABLES_DIR))
    return bool(_table_files(project))


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

    # the batch was cut off mid-write: readers see nothing, the log holds nothing
    assert raw_rows(project, "big", "events") == 0
    assert table_state(project, "big", "events").batches == []

    record = run_pipeline(project, stages=("ingest",))
    ingest = record.stage("ingest")
    assert ingest is not None and ingest.details["tables"]["big.events"]["batches"] == 1
    assert raw_rows(project, "big", "events") == BIG_ROWS
    assert len(table_state(project, "big", "events").batches) == 1
    assert_no_leftovers(project, "big", "events")  # the killed writer's file is gone


@pytest.mark.parametrize(
    ("failpoint", "visible_after_crash", "landed_on_rerun"),
    [("before_commit", 0, 1), ("after_commit", BIG_ROWS, 0)],
)
def test_crash_around_the_commit_point(crash_project, failpoint, visible_after_crash,
                                       landed_on_rerun):  # fmt: skip
    project, env = crash_project
    proc = _start_ingest(project, env, failpoint)
    proc.wait(timeout=300)
    assert proc.returncode == 86  # the failpoint's exit: no cleanup ran
    assert raw_rows(project, "big", "events") == visible_after_crash

    record = run_pipeline(project, stages=("ingest",))
    ingest = record.stage("ingest")
    assert ingest is not None
    assert ingest.details["tables"]["big.events"]["batches"] == landed_on_rerun
    assert raw_rows(project, "big", "events") == BIG_ROWS  # never duplicated
    state = table_state(project, "big", "events")
    assert len(state.batches) == 1 and state.batches[0].rows == BIG_ROWS
    assert_no_leftovers(project, "big", "events")
