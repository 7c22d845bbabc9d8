"""Kill sweeps: SIGKILL `lakehouse ingest` again and again at spread-out moments, for each
source kind, on the local lake and on S3; then one clean run must leave the lake equal to
the source (count and an order-independent checksum), with no leftover file or upload.

`make test` runs a quick sample (2 kills each); `make test-slow` runs 30 per kind and
lake (`LAKEHOUSE_KILLS` overrides).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from pipeline.config import Project, load_project
from pipeline.run import run_pipeline
from tests.integration.helpers import assert_no_leftovers
from tests.integration.vendor_api import TOKEN, VendorApi
from tests.postgres import psql

FILES, ROWS_PER_FILE = 4, 60_000
DB_ROWS = 240_000
API_RECORDS, PER_PAGE = 3_000, 100
KINDS = ["csv", "jsonl", "sqlite", "postgres", "http"]
SLOW_KILLS = int(os.environ.get("LAKEHOUSE_KILLS", "30"))


def _rows_sql(n: int, start: int = 0) -> str:
    """The rows every source holds: an id, a text and a number."""
    return (f"SELECT range AS id, 'payload ' || md5(range::VARCHAR) AS body, "
            "round(range * 0.37, 2)::DOUBLE AS amount "
            f"FROM range({start}, {start + n})")  # fmt: skip


def _checksum(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[Any, ...]:
    row = con.execute(
        "SELECT count(*), count(DISTINCT id), "
        f"sum(hash(id::BIGINT, body::VARCHAR, amount::DECIMAL(18, 2))) "
        f"FROM {relation}"
    ).fetchone()
    assert row is not None
    return tuple(row)


def _source(kind: str, root: Path, postgres: str | None, api: VendorApi | None) -> dict[str, Any]:
    """The source spec (and its data, written once)."""
    data = root / "in"
    data.mkdir(parents=True, exist_ok=True)
    if kind in ("csv", "jsonl"):
        for i in range(FILES):
            fmt = "(HEADER)" if kind == "csv" else "(FORMAT json)"
            path = data / f"part-{i}.{kind}"
            duckdb.sql(f"COPY ({_rows_sql(ROWS_PER_FILE, i * ROWS_PER_FILE)}) TO '{path}' {fmt}")
        return {"name": "src", "kind": "csv" if kind == "csv" else "json",
                "tables": [{"name": "t", "path": f"in/*.{kind}"}]}  # fmt: skip
    if kind == "sqlite":
        db = data / "shop.sqlite"
        rows = duckdb.sql(_rows_sql(DB_ROWS)).fetchall()
        with sqlite3.connect(db) as con:
            con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT, amount REAL)")
            con.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
        return {"name": "src", "kind": "sqlite", "database": {"url": str(db)},
                "tables": [{"name": "t"}]}  # fmt: skip
    if kind == "postgres":
        assert postgres is not None
        schema = f"kill_{uuid.uuid4().hex[:8]}"
        psql(postgres, f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.t AS "
                       f"SELECT g AS id, 'payload ' || md5(g::text) AS body, "
                       f"round(g * 0.37, 2)::numeric(18, 2) AS amount "
                       f"FROM generate_series(0, {DB_ROWS - 1}) g")  # fmt: skip
        return {"name": "src", "kind": "postgres", "tables": [{"name": "t"}],
                "database": {"url": postgres, "schema": schema}}  # fmt: skip
    assert api is not None
    return {"name": "src", "kind": "http",
            "http": {"base_url": api.url, "auth": {"type": "bearer", "token": TOKEN}},
            "tables": [{"name": "t", "endpoint": "/records", "records_path": "data",
                        "params": {"per_page": PER_PAGE},
                        "paginate": {"type": "page"}}]}  # fmt: skip


def _expected(kind: str) -> tuple[Any, ...]:
    n = DB_ROWS if kind in ("sqlite", "postgres") else API_RECORDS if kind == "http" else (
        FILES * ROWS_PER_FILE)  # fmt: skip
    return _checksum(duckdb.connect(), f"({_rows_sql(n)})")


@pytest.fixture
def api() -> Iterator[VendorApi]:
    with VendorApi(0) as server:
        server.records = duckdb.sql(_rows_sql(API_RECORDS)).fetchall()
        yield server


def _sweep(kind: str, lake_kind: str, kills: int, tmp_path: Path,
           request: pytest.FixtureRequest) -> None:  # fmt: skip
    postgres = request.getfixturevalue("postgres") if kind == "postgres" else None
    api = request.getfixturevalue("api") if kind == "http" else None
    lake_url, env = str(tmp_path / "lake"), {}
    if lake_kind == "s3":
        bucket, env = request.getfixturevalue("s3_bucket")
        lake_url = f"s3://{bucket}/lake"
    spec = {"lake": {"url": lake_url}, "ingest": {"workers": 1},
            "sources": [_source(kind, tmp_path, postgres, api)]}  # fmt: skip
    (tmp_path / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    lakes = (f"{lake_url}-{n}" for n in range(1, kills + 2))  # a fresh one when one is full

    def project_on(url: str) -> tuple[Project, dict[str, str]]:
        lake_env = {**env, "LAKEHOUSE_LAKE_URL": url}
        return load_project(tmp_path / "lakehouse.yml", env=lake_env), lake_env

    # a clean run into a lake of its own times the kills
    project, lake_env = project_on(next(lakes))
    started = time.monotonic()
    assert _ingest_process(project, lake_env).wait(timeout=600) == 0
    span = time.monotonic() - started
    _assert_equal_to_the_source(project, kind)

    rng = random.Random(f"{kind}-{lake_kind}")
    outcomes = []
    project, lake_env = project_on(next(lakes))
    for _ in range(kills):
        proc = _ingest_process(project, lake_env)
        time.sleep(rng.uniform(0.05, 0.9 * span))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        outcomes.append(proc.wait(timeout=60))
        _assert_never_doubled(project, kind)
        if outcomes[-1] == 0:  # it finished first: whole, and the next kill needs work
            _assert_equal_to_the_source(project, kind)
            project, lake_env = project_on(next(lakes))
    assert outcomes.count(-signal.SIGKILL) >= kills // 2, outcomes  # most were cut off

    record = run_pipeline(project, stages=("ingest",))
    assert record.status == "passed", record.error
    _assert_equal_to_the_source(project, kind)


def _assert_equal_to_the_source(project: Project, kind: str) -> None:
    con = project.lake.connect()
    try:
        assert _checksum(con, "lake.src.t") == _expected(kind)
    finally:
        con.close()
    assert_no_leftovers(project, "src", "t")


def _assert_never_doubled(project: Project, kind: str) -> None:
    """Between kills: whatever is visible was landed once (a file is a batch of its own;
    a database or an API is one batch, whole or absent)."""
    con = project.lake.connect()
    try:
        if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'lake' "
                           "AND schema_name = 'src'").fetchone()[0]:  # fmt: skip
            return
        count, distinct, _ = _checksum(con, "lake.src.t")
    finally:
        con.close()
    assert count == distinct
    if kind in ("csv", "jsonl"):
        assert count % ROWS_PER_FILE == 0
    else:
        assert count in (0, _expected(kind)[0])


def _ingest_process(project: Project, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "--project", str(project.path), "ingest"],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


QUICK = [pytest.param(kind, "local", 2, id=f"{kind}-local-quick") for kind in KINDS] + [
    pytest.param("csv", "s3", 2, id="csv-s3-quick")
]
SLOW = [
    pytest.param(kind, lake, SLOW_KILLS, id=f"{kind}-{lake}", marks=pytest.mark.slow)
    for kind in KINDS
    for lake in ("local", "s3")
]


@pytest.mark.parametrize(("kind", "lake_kind", "kills"), QUICK + SLOW)
def test_kill_sweep(kind: str, lake_kind: str, kills: int, tmp_path: Path,
                    request: pytest.FixtureRequest) -> None:  # fmt: skip
    _sweep(kind, lake_kind, kills, tmp_path, request)
