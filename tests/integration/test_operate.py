"""Running it every day: one run at a time per lake, a killed run's lock taken over, a run
with nothing new skipping the build."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from examples.shop.shop_day import next_day
from lake import Holder, Lake, LakeSettings, RunLocked, layout
from pipeline.config import Project, load_project
from pipeline.run import run_pipeline
from tests.conftest import ProjectFactory
from tests.integration.helpers import cli, published_marts, published_run, raw_rows


def _lock_file(project: Project) -> Path:
    path = project.lake.settings.catalog_path
    assert path is not None
    return path.with_suffix(".locks") / "_run.lock"


def _holder_in(project: Project, timeout_s: float = 120) -> dict:
    """The holder a running run wrote into the lock file."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        path = _lock_file(project)
        text = path.read_text() if path.exists() else ""
        if text:
            return json.loads(text)
        time.sleep(0.05)
    raise AssertionError("the run never took the lock")


def _start_run(project: Project, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "--project", str(project.path), "run", *args],
        env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_one_run_per_lake_and_a_killed_runs_lock_is_taken_over(
    make_project: ProjectFactory,
) -> None:
    project = make_project()
    first = _start_run(project)
    holder = _holder_in(project)
    assert holder["pid"] == first.pid

    # a second run, in its own process, exits at once naming the first
    second = cli(project, "run")
    assert second.returncode == 75, second.stderr
    assert "another run is in progress on this lake" in second.stderr
    assert f"run {holder['run_id']} (pid {first.pid} on " in second.stderr
    assert "Traceback" not in second.stderr

    # the first run is killed holding the lock: the next run takes it over, and says so
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    third = cli(project, "run", timeout=600)
    assert third.returncode == 0, third.stderr[-3000:]
    assert f"took over the run lock of run {holder['run_id']}" in third.stderr
    assert _lock_file(project).read_text() == ""  # released cleanly: nothing to take over
    published = published_run(project)
    assert published is not None and published != holder["run_id"]

    # a run started while another holds the lake waits for it with --wait, then finds
    # the other's build published (a changed project file makes the fourth rebuild)
    project.path.write_text(project.path.read_text() + "\n# changed\n")
    fourth = _start_run(project)
    holding = _holder_in(project)
    fifth = cli(project, "run", "--wait", "600", timeout=900)
    assert fourth.wait(timeout=600) == 0
    assert fifth.returncode == 0, fifth.stderr[-3000:]
    assert "took over" not in fifth.stderr
    assert f"nothing new since run {holding['run_id']}" in fifth.stdout


def test_ingest_alone_takes_no_run_lock(make_project: ProjectFactory) -> None:
    """Writers of raw tables run beside a run (each table has its own lock)."""
    project = make_project()
    with project.lake.run_lock(Holder("someone-else")):
        record = run_pipeline(project, stages=("ingest",), only=["iot"])
        assert record.status == "passed"
        with pytest.raises(RunLocked, match="run someone-else"):
            run_pipeline(project, stages=("ingest", "check_raw"), only=["iot"])


def test_the_run_lock_names_its_holder_on_either_catalog(tmp_path: Path, catalog) -> None:
    lake = Lake(LakeSettings.resolve(str(tmp_path / "lake"), tmp_path, env={}, catalog=catalog))
    lake.connect().close()
    with lake.run_lock(Holder("run-a")):
        t0 = time.monotonic()
        with pytest.raises(RunLocked) as caught, lake.run_lock(Holder("run-b"), wait_s=0.5):
            pass
        assert time.monotonic() - t0 >= 0.5  # it waited before giving up
        assert caught.value.holder is not None
        assert caught.value.holder.run_id == "run-a"
        assert caught.value.holder.pid == os.getpid()
        assert "gave up after waiting 0 s" not in str(caught.value)
    with lake.run_lock(Holder("run-b")):  # released: free at once
        pass


def test_a_run_with_nothing_new_skips_build_gate_and_publish(
    make_project: ProjectFactory,
) -> None:
    project = make_project()
    first = run_pipeline(project)
    build = first.stage("build")
    assert build is not None  # `dbt source freshness` ran with the build: dbt's verdicts
    assert build.details["source_freshness"]["iot.sensor_readings"]["status"] == "pass"
    again = run_pipeline(project)
    assert again.nothing_new_since == first.run_id
    assert [(s.name, s.status) for s in again.stages] == [
        ("ingest", "passed"), ("check_raw", "passed"), ("build", "skipped"),
        ("check_marts", "skipped"), ("publish", "skipped"),
    ]  # fmt: skip
    assert published_run(project) == first.run_id

    # a changed project file (or dbt project, or suite) is something new
    project.path.write_text(project.path.read_text() + "\n# changed\n")
    changed = run_pipeline(project)
    assert changed.nothing_new_since is None
    assert published_run(project) == changed.run_id

    # so is a batch landed by an ingest on its own, between runs
    new = project.base_dir / "sources" / "iot" / "sensor_readings_2026_04.csv"
    new.write_text("warehouse_id,sensor_id,reading_ts,temperature_c\n"
                   "1,cold-1-1,2026-04-01 00:00:00,4.2\n")  # fmt: skip
    run_pipeline(project, stages=("ingest",), only=["iot"])
    after_ingest = run_pipeline(project)
    assert after_ingest.nothing_new_since is None
    assert published_run(project) == after_ingest.run_id


def test_a_source_that_is_down_leaves_a_partial_run_and_the_rest_published(
    make_project: ProjectFactory,
) -> None:
    project = make_project(built=True)  # as the session's first run left it
    _, before = published_marts(project)
    day = next_day(project.base_dir / "sources" / "shop.sqlite", fraction=0.05)
    spec = yaml.safe_load(project.path.read_text())
    vendor = next(s for s in spec["sources"] if s["name"] == "vendor")
    vendor["http"].update(base_url=f"http://127.0.0.1:{_closed_port()}", max_retries=1,
                          backoff_s=0.01)  # fmt: skip
    project.path.write_text(yaml.safe_dump(spec, sort_keys=False))

    result = cli(project, "run", timeout=600)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error: partial run: vendor could not be ingested" in result.stderr
    assert "SKIPPED vendor.reviews not ingested: source 'vendor', table 'reviews'" in result.stdout
    assert "ConnectionError after 2 tries" in result.stdout
    assert "runbook: the example shop's API: start it with `lakehouse example-api &`" in (
        result.stdout
    )
    assert "SKIPPED models downstream of source vendor not rebuilt" in result.stdout
    run_id, after = published_marts(project)
    record = json.loads(project.lake.storage.read_bytes(layout.run_key(str(run_id))) or b"{}")
    assert record["status"] == "partial" and record["failed_sources"] == ["vendor"]
    assert after["fct_orders"][0] == before["fct_orders"][0] + day["orders"]
    assert after["fct_reviews"] == before["fct_reviews"]  # not rebuilt: its last build


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_scheduler_runs_a_due_source_and_its_models_only(
    make_project: ProjectFactory, first_run
) -> None:
    project = make_project(built=True)
    whole = first_run[1]  # as the default schedule did, last night
    full_build = whole.stage("build")
    assert full_build is not None
    spec = yaml.safe_load(project.path.read_text())
    spec["schedule"] = {"default": "0 0 1 1 *"}  # the whole pipeline: not this year
    iot = next(s for s in spec["sources"] if s["name"] == "iot")
    iot["schedule"] = "* * * * * */2"  # every 2 s (a sixth field: seconds)
    project.path.write_text(yaml.safe_dump(spec, sort_keys=False))
    readings = raw_rows(project, "iot", "sensor_readings")
    (project.base_dir / "sources" / "iot" / "sensor_readings_2026_04.csv").write_text(
        "warehouse_id,sensor_id,reading_ts,temperature_c\n1,cold-1-1,2026-04-01 00:00:00,4.2\n"
    )

    dry = cli(project, "schedule", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0].endswith("sources iot")

    result = cli(project, "schedule", "--max-runs", "2", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = [json.loads(project.lake.storage.read_bytes(k) or b"{}")
            for k in sorted(project.lake.storage.list(layout.RUNS))][1:]  # fmt: skip
    assert len(runs) == 2
    assert all(set(r["stages"][0]["details"]["tables"]) == {"iot.sensor_readings"} for r in runs)
    first, second = runs
    assert [s["status"] for s in first["stages"]] == ["passed"] * 5
    built = first["stages"][2]["details"]["models"]
    assert 0 < built < full_build.details["models"]  # iot's downstream models only
    assert second["nothing_new_since"] == first["run_id"]
    assert raw_rows(project, "iot", "sensor_readings") == readings + 1
    assert published_run(project) == first["run_id"]
    assert f"run {first['run_id']} of ['iot']: passed" in result.stderr


def test_build_takes_dbt_flags_streams_its_log_and_stops_at_its_timeout(
    make_project: ProjectFactory,
) -> None:
    project = make_project()
    run_pipeline(project, stages=("ingest",))
    one = ("--select", "stg_iot__sensor_readings")
    built = cli(project, "-v", "build", *one, "--full-refresh", "--vars", "{day: 1}")
    assert built.returncode == 0, built.stdout + built.stderr
    assert "dbt build passed: 1 models" in built.stdout
    assert "START sql view model staging.stg_iot__sensor_readings" in built.stdout  # dbt's log
    quiet = cli(project, "build", *one)
    assert quiet.returncode == 0 and "START" not in quiet.stdout

    spec = yaml.safe_load(project.path.read_text())
    spec["warehouse"]["dbt_timeout_s"] = 0.5  # dbt cannot even start in that
    project.path.write_text(yaml.safe_dump(spec, sort_keys=False))
    stopped = cli(project, "build", *one)
    assert stopped.returncode == 1
    assert "dbt build did not finish in 0.5 s: stopped (warehouse.dbt_timeout_s)" in (
        stopped.stderr
    )


class _Receiver:
    """A webhook receiver on 127.0.0.1 that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        import http.server
        import threading

        bodies = self.bodies = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def keys(self, field: str = "alerts") -> list[str]:
        return [a["key"] if isinstance(a, dict) else a for b in self.bodies for a in b[field]]


def test_alerts_fire_once_and_say_when_resolved(make_project: ProjectFactory) -> None:
    from pipeline import monitor

    receiver = _Receiver()
    project = make_project()
    spec = yaml.safe_load(project.path.read_text())
    spec["alerts"] = {"webhook_url": receiver.url}
    project.path.write_text(yaml.safe_dump(spec, sort_keys=False))
    project = load_project(project.path)
    first = run_pipeline(project)
    assert first.monitor["freshness"]["iot.sensor_readings"]["status"] == "pass"
    assert receiver.bodies == []  # all fresh, the run passed: nothing to say

    # two days later, nothing has landed: every table past its declared freshness
    later = datetime.now(UTC) + timedelta(days=2)
    record = asdict(first)
    _, firing, healthy = monitor.evaluate(project, record, [], later)
    assert "stale:iot.sensor_readings" in {a.key for a in firing}
    sent = monitor.notify(project, "r2", firing, healthy)
    assert {a.key for a in sent} == {a.key for a in firing}
    [body] = receiver.bodies
    assert body["text"].startswith(f"lakehouse {project.spec.name}, run r2:")
    assert "iot.sensor_readings is stale: newest data 2 days" in body["text"]
    assert "(limit 1 day, 0:00:00)" in body["text"]  # iot's error_after: 24 hours
    # the next run, still stale: nothing sent again
    _, firing, healthy = monitor.evaluate(project, record, [], later)
    assert monitor.notify(project, "r3", firing, healthy) == []
    assert len(receiver.bodies) == 1
    # fresh again: one message saying so
    _, firing, healthy = monitor.evaluate(project, record, [], datetime.now(UTC))
    monitor.notify(project, "r4", firing, healthy)
    assert "stale:iot.sensor_readings" in receiver.keys("resolved")

    # a partial run alerts (once), and a passing run resolves it
    spec["sources"][[s["name"] for s in spec["sources"]].index("vendor")]["http"].update(
        base_url=f"http://127.0.0.1:{_closed_port()}", max_retries=0)  # fmt: skip
    project.path.write_text(yaml.safe_dump(spec, sort_keys=False))
    down = load_project(project.path)
    assert run_pipeline(down).status == "partial"
    assert run_pipeline(down).status == "partial"
    assert receiver.keys().count("run:partial") == 1
    assert run_pipeline(project).status == "passed"
    assert "run:partial" in receiver.keys("resolved")

    # what monitoring reads: the runs with their measurements, as JSON
    status = cli(project, "status", "--json")
    assert status.returncode == 0, status.stderr
    last = json.loads(status.stdout)["runs"][-1]
    assert last["status"] == "passed" and last["monitor"]["firing"] == []
    assert last["monitor"]["freshness"]["shop.orders"]["status"] == "pass"
    text = cli(project, "status").stdout
    assert f"{last['run_id']}  passed      started {last['started_at']}" in text


def test_a_volume_far_from_recent_runs_is_an_anomaly() -> None:
    from pipeline.monitor import volumes

    def run(run_id: str, rows: int) -> dict:
        details = {"tables": {"shop.orders": {"rows": rows}}}
        return {"run_id": run_id, "stages": [{"name": "ingest", "details": details}]}

    history = [run("a", 1000), run("b", 0), run("c", 1100), run("d", 900)]
    assert volumes(run("e", 1050), history, 5, 10)["shop.orders"] == {
        "rows": 1050, "median": 1000, "anomaly": False}  # fmt: skip
    assert volumes(run("e", 150), history, 5, 10)["shop.orders"]["anomaly"]
    assert volumes(run("e", 6000), history, 5, 10)["shop.orders"]["anomaly"]
    assert volumes(run("e", 0), history, 5, 10) == {}  # nothing landed: freshness's job
    assert volumes(run("e", 10), history[:2], 5, 10)["shop.orders"]["median"] is None  # too few


def test_a_table_that_runs_too_long_is_stopped_and_the_others_land(tmp_path: Path) -> None:
    import sqlite3

    from ingest import run_ingest

    # a view that yields 100M generated rows: minutes to read on any machine, no disk
    slow_db, small = tmp_path / "slow.sqlite", tmp_path / "small.csv"
    with sqlite3.connect(slow_db) as con:
        con.execute("CREATE VIEW big AS WITH RECURSIVE r(id) AS (SELECT 0 UNION ALL "
                    "SELECT id + 1 FROM r WHERE id < 100000000) "
                    "SELECT id, 'row ' || id AS body FROM r")  # fmt: skip
    small.write_text("a\n1\n2\n")
    spec = {
        "lake": {"url": str(tmp_path / "lake")},
        # the 3-row table must finish well inside it even on a loaded CI machine (0.3 s
        # was too tight for it there)
        "ingest": {"table_timeout_s": 2},
        "sources": [
            {
                "name": "slow",
                "kind": "sqlite",
                "database": {"url": str(slow_db)},
                "tables": [{"name": "big"}],
            },
            {"name": "quick", "kind": "csv", "tables": [{"name": "ok", "path": str(small)}]},
        ],
    }
    (tmp_path / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    project = load_project(tmp_path / "lakehouse.yml", env={})
    report = run_ingest(project.lake, project.spec.sources, project.base_dir,
                        project.spec.ingest)  # fmt: skip
    [failure] = report.failures()
    assert failure.startswith("source 'slow', table 'big'")
    assert "did not finish in 2 s (ingest.table_timeout_s): stopped" in failure
    assert raw_rows(project, "slow", "big") == 0  # nothing of it committed
    assert raw_rows(project, "quick", "ok") == 2
