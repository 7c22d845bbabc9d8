"""The object store goes away in the middle of a run: a blink within the retry deadline
costs nothing; a longer outage fails the run in one line per table, never a traceback,
the run still leaves its record, and the next run converges on the source."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import pytest
import yaml

from pipeline.config import Project, load_project
from tests.integration.helpers import assert_no_leftovers, cli
from tests.seaweedfs import s3_client, seaweedfs_server

FILES, ROWS = 6, 300_000


class Store:
    """A private SeaweedFS that can be killed and started again on its data and ports."""

    def __init__(self, root: Path) -> None:
        self.root, self.ports_from = root, None
        self.running: contextlib.ExitStack | None = None
        self.env: dict[str, str] = {}

    def start(self) -> None:
        stack = contextlib.ExitStack()
        self.env = stack.enter_context(seaweedfs_server(self.root, self.ports_from))
        self.ports_from = urlparse(self.env["AWS_ENDPOINT_URL"]).port
        self.running = stack

    def kill(self) -> None:
        assert self.running is not None
        self.running.close()  # SIGTERM, then SIGKILL of the whole group
        self.running = None


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    server = Store(tmp_path / "s3")
    server.start()
    yield server
    if server.running:
        server.kill()


def _write(folder: Path, first: int, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(first, first + count):
        duckdb.sql(f"COPY (SELECT range AS id, md5(range::VARCHAR) AS body FROM "
                   f"range({i * ROWS}, {(i + 1) * ROWS})) TO '{folder}/part-{i:02d}.csv' "
                   "(HEADER)")  # fmt: skip


def _project(root: Path, store: Store, deadline_s: float) -> tuple[Project, dict[str, str]]:
    bucket = "outage"
    with contextlib.suppress(Exception):
        s3_client(store.env).create_bucket(Bucket=bucket)
    spec = {"lake": {"url": f"s3://{bucket}/lake"}, "warehouse": {"dir": "warehouse"},
            "ingest": {"workers": 1},
            "sources": [{"name": "src", "kind": "csv",
                         "tables": [{"name": "t", "path": "in/*.csv"}]}]}  # fmt: skip
    (root / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    env = {**store.env, "LAKEHOUSE_S3_RETRY_S": str(deadline_s)}
    return load_project(root / "lakehouse.yml", env=env), env


def _ingest(project: Project, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "--project", str(project.path), "ingest"],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _after_a_batch(project: Project, proc: subprocess.Popen[str], files_before: int) -> None:
    """Wait until a batch has committed (so the outage strikes mid-run)."""
    catalog = project.lake.settings.catalog_path
    assert catalog is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(sqlite3.Error), sqlite3.connect(catalog, timeout=1) as con:
            rows = con.execute("SELECT count(*) FROM ducklake_data_file").fetchone()
            if rows and rows[0] > files_before:
                return
        time.sleep(0.1)
    raise AssertionError("no batch committed before the run ended")


def _landed(project: Project) -> tuple[int, int]:
    con = project.lake.connect()
    try:
        row = con.execute("SELECT count(*), count(DISTINCT id) FROM lake.src.t").fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0]), int(row[1])


def test_a_store_outage_mid_run(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "p"
    _write(root / "in", 0, FILES)

    # a blink: the store is gone for its restart, within a 60 s retry deadline
    project, env = _project(root, store, deadline_s=60)
    proc = _ingest(project, env)
    _after_a_batch(project, proc, 0)
    store.kill()
    store.start()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert _landed(project) == (FILES * ROWS, FILES * ROWS)

    # an outage longer than the deadline (2 s): the run fails, one line per failure
    _write(root / "in", FILES, FILES)
    project, env = _project(root, store, deadline_s=2)
    proc = _ingest(project, env)
    _after_a_batch(project, proc, FILES)  # (the new files' first batch)
    store.kill()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode in (1, 2), (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    errors = [line for line in err.splitlines() if " ERROR " in line or line.startswith("error")]
    assert errors and all(len(line) < 1000 for line in errors), err
    pending = list((root / "warehouse" / "runs-pending").glob("*.json"))
    assert len(pending) == 1  # the failed run left its record, where it could
    assert json.loads(pending[0].read_text())["status"] in ("failed", "partial")

    # the store is back: the next run converges, and sends the record on
    store.start()
    done = cli(project, "ingest", env=env)
    assert done.returncode == 0, done.stderr
    assert _landed(project) == (2 * FILES * ROWS, 2 * FILES * ROWS)
    assert not list((root / "warehouse" / "runs-pending").glob("*.json"))
    status = json.loads(cli(project, "status", "--json", env=env).stdout)
    assert pending[0].stem in [r["run_id"] for r in status["runs"]]
    assert_no_leftovers(project, "src", "t")
