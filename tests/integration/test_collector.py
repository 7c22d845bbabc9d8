"""`lakehouse collect` as a real process: HTTP clients, malformed events, kills, back-pressure,
and MQTT through a real Mosquitto broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from pipeline.config import Project, load_project
from tests.integration.helpers import lake_sql, raw_rows

CLICKS = {"click_id": "VARCHAR", "session_id": "VARCHAR", "url": "VARCHAR",
          "occurred_at": "TIMESTAMPTZ", "items": "INTEGER", "props": "JSON"}  # fmt: skip
READINGS = {"sensor_id": "VARCHAR", "reading_at": "TIMESTAMPTZ", "temperature": "DOUBLE"}


def _project(root: Path, collector: dict[str, Any] | None = None,
             mqtt: tuple[str, int] | None = None) -> Project:  # fmt: skip
    sources: list[dict[str, Any]] = [{"name": "web", "kind": "events", "tables": [
        {"name": "clicks", "columns": CLICKS, "required": ["session_id"]},
    ]}]  # fmt: skip
    if mqtt:
        sources.append({"name": "iot", "kind": "mqtt",
                        "mqtt": {"host": mqtt[0], "port": mqtt[1], "client_id": "lake-test"},
                        "tables": [{"name": "readings", "topic": "warehouse/+/sensors",
                                    "columns": READINGS,
                                    "primary_key": ["sensor_id", "reading_at"]}]})  # fmt: skip
    spec = {"lake": {"url": str(root / "lake")},
            "collector": {"port": 0, "log_dir": str(root / "log"), **(collector or {})},
            "sources": sources}  # fmt: skip
    (root / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    return load_project(root / "lakehouse.yml", env={})


_started: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_process_left() -> Iterator[None]:
    """A test that fails half-way leaves no collector running."""
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


class Collecting:
    """A `lakehouse collect` process and its URL."""

    def __init__(self, project: Project, env: dict[str, str] | None = None) -> None:
        self.project = project
        info = project.collector_log_dir / "collector.json"
        info.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "--project", str(project.path), "collect"],
            env={**os.environ, **(env or {})}, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        _started.append(self.proc)
        self.stderr: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + 60
        while not info.exists():
            assert self.proc.poll() is None, "".join(self.stderr)
            assert time.monotonic() < deadline, "the collector did not start"
            time.sleep(0.05)
        self.url = json.loads(info.read_text())["url"]

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def post(self, body: Any, stream: str = "web/clicks", **kw: Any) -> requests.Response:
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return requests.post(f"{self.url}/v1/{stream}", data=data, timeout=30, **kw)

    def status(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/health", timeout=10).json()

    def wait(self, until: Any, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.status()
            if until(status):
                return status
            assert time.monotonic() < deadline, status
            time.sleep(0.05)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


@pytest.fixture(scope="module")
def broker() -> Iterator[tuple[str, int]]:
    from tests.mosquitto import mosquitto_server

    with mosquitto_server() as address:
        yield address


def _click(i: int, **extra: Any) -> dict[str, Any]:
    return {"click_id": f"c{i}", "session_id": f"s{i % 7}", "url": f"/p/{i}",
            "occurred_at": "2026-11-25T10:00:00+01:00", "items": i % 5,
            "props": {"ab": "v2", "n": [i]}, **extra}  # fmt: skip


_PROBE = """
import os, signal, socket, sys
from pipeline.config import load_project
from ingest.stream.server import serve

project = load_project(sys.argv[1])
def probe(url):  # the moment collector.json is written: a client may connect now
    host, port = url.removeprefix("http://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
        print("accepted", flush=True)
    except OSError as exc:
        print(f"refused: {exc}", flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
serve(project.lake, project.spec.sources, project.spec.collector, project.collector_log_dir, probe)
"""


def test_a_collector_that_says_it_is_ready_takes_connections(tmp_path: Path) -> None:
    """collector.json is written in the app's start-up, before uvicorn serves the socket:
    the socket must listen already, or a client that saw the file is refused (CI saw it)."""
    project = _project(tmp_path)
    done = subprocess.run([sys.executable, "-c", _PROBE, str(project.path)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.stdout.strip() == "accepted", done.stdout + done.stderr
    assert done.returncode == 0, done.stderr


def test_concurrent_clients_good_and_malformed_events(tmp_path: Path) -> None:
    project = _project(tmp_path, {"token": "collector-secret-1", "max_request_mb": 0.05})
    auth = {"Authorization": "Bearer collector-secret-1"}
    c = Collecting(project)
    outcomes: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def client(t: int) -> None:
        for j in range(20):
            base = (t * 20 + j) * 10
            if j % 4 == 0:  # JSON Lines with a line that is not JSON
                lines = [json.dumps(_click(base + i)) for i in range(9)] + ['{"click_id": "x"']
                r = c.post("\n".join(lines), headers=auth)
            elif j % 4 == 1:  # an array with an event of the wrong type, one missing a field
                events = [_click(base + i) for i in range(8)]
                events += [_click(base + 8, items="three"), {"click_id": "y"}]
                r = c.post(events, headers=auth)
            else:
                r = c.post([_click(base + i) for i in range(10)], headers=auth)
            with lock:
                outcomes.append((r.status_code, r.json()))

    threads = [threading.Thread(target=client, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted({code for code, _ in outcomes}) == [200, 400]
    refused = [body for code, body in outcomes if code == 400]
    assert len(refused) == 40
    reasons = {r["reason"].split(":")[0] for body in refused for r in body["rejected"]}
    assert reasons == {"not JSON", "items", "session_id is required"}
    assert {r["index"] for body in refused for r in body["rejected"]} == {8, 9}
    accepted = sum(body["accepted"] for _, body in outcomes)
    assert accepted == 20 * 10 + 20 * 9 + 20 * 8 + 20 * 10 - 20 * 10 + 20 * 10  # 740
    # one event alone, and the refusals that keep nothing
    assert c.post(_click(9999), headers=auth).json() == {"accepted": 1}
    assert c.post(_click(1)).status_code == 401
    assert c.post(_click(1), headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.post(_click(1), stream="web/nope", headers=auth).status_code == 404
    big = c.post([_click(i) for i in range(1000)], headers=auth)
    assert big.status_code == 413 and "collector.max_request_mb" in big.json()["error"]

    status = c.wait(lambda s: s["landed"] == accepted + 1 and s["pending"] == 0)
    assert status["rejected"] == 60 and status["status"] == "ok"
    metrics = requests.get(f"{c.url}/metrics", timeout=10).text
    assert f"lakehouse_collector_landed_total {accepted + 1}" in metrics
    rows = lake_sql(project, "SELECT count(*), count(DISTINCT click_id), "
                    "min(occurred_at) = '2026-11-25 09:00:00+00', max(props->>'ab') "
                    "FROM lake.web.clicks")  # fmt: skip
    assert rows == [(accepted + 1, accepted + 1, True, "v2")]
    kept = lake_sql(project, "SELECT reason, raw_record, source_file FROM "
                    "lake._lakehouse.rejected_rows ORDER BY reason")  # fmt: skip
    assert len(kept) == 60
    by_reason: dict[str, set[str]] = {}
    for reason, raw, where in kept:
        assert where.startswith("POST /v1/web/clicks from 127.0.0.1")
        by_reason.setdefault(reason.split(":")[0], set()).add(raw)
    assert by_reason["not JSON"] == {'{"click_id": "x"'}
    assert by_reason["session_id is required"] == {'{"click_id":"y"}'}
    assert by_reason["items"] == {  # each refused event is kept as it was sent
        json.dumps(_click(t * 200 + j * 10 + 8, items="three"), separators=(",", ":"))
        for t in range(4) for j in range(20) if j % 4 == 1
    }  # fmt: skip
    assert c.stop() == 0
    assert not list(project.collector_log_dir.glob("*.seg"))


@pytest.mark.parametrize("kill", ["accepted, not landed", "landed, log not deleted"])
def test_a_killed_collector_lands_every_accepted_event_once(tmp_path: Path, kill: str) -> None:
    # the clicks have no primary key: nothing but the batch log can keep a replay from
    # landing a micro-batch twice
    slow = {"max_batch_s": 60} if kill.startswith("accepted") else {"max_batch_s": 0.2}
    project = _project(tmp_path, slow)
    env = {} if kill.startswith("accepted") else {"LAKEHOUSE_FAILPOINT": "stream_after_commit"}
    c = Collecting(project, env)
    sent = 0
    for j in range(5 if kill.startswith("accepted") else 1):
        r = c.post([_click(j * 50 + i) for i in range(50)])
        assert r.status_code == 200
        sent += 50
    if kill.startswith("accepted"):
        assert raw_rows(project, "web", "clicks") == 0  # nothing landed yet
        c.kill()
    else:
        assert c.proc.wait(60) == 86  # died right after the commit
        assert raw_rows(project, "web", "clicks") == sent
    assert list(project.collector_log_dir.glob("*.seg"))  # the log kept them

    project = _project(tmp_path, {"max_batch_s": 0.2})
    again = Collecting(project)
    assert lake_sql(project, "SELECT count(*), count(DISTINCT click_id) FROM lake.web.clicks") \
        == [(sent, sent)]  # fmt: skip
    assert again.post([_click(1000)]).status_code == 200
    again.wait(lambda s: s["landed"] == 1)
    assert again.stop() == 0
    assert raw_rows(project, "web", "clicks") == sent + 1


def test_back_pressure_then_a_clean_stop_lands_what_was_accepted(tmp_path: Path) -> None:
    project = _project(tmp_path, {"max_batch_s": 60, "max_pending_events": 100})
    c = Collecting(project)
    assert c.post([_click(i) for i in range(60)]).status_code == 200
    assert c.post([_click(60 + i) for i in range(40)]).status_code == 200
    full = c.post([_click(200)])
    assert full.status_code == 429 and int(full.headers["Retry-After"]) >= 1
    assert c.status()["throttled"] == 1 and c.status()["pending"] == 100
    assert c.stop() == 0  # SIGTERM: what was accepted lands before the exit
    assert raw_rows(project, "web", "clicks") == 100


def _publish(broker: tuple[str, int], readings: list[dict[str, Any] | bytes]) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="sensor-gateway")
    pub.connect(*broker)
    pub.loop_start()
    try:
        for i, r in enumerate(readings):
            payload = r if isinstance(r, bytes) else json.dumps(r)
            pub.publish(f"warehouse/wh{i % 3}/sensors", payload, qos=1).wait_for_publish(10)
    finally:
        pub.disconnect()
        pub.loop_stop()


def _reading(i: int) -> dict[str, Any]:
    return {"sensor_id": f"s{i % 10}", "reading_at": f"2026-11-25T10:{i // 60 % 60:02d}:"
            f"{i % 60:02d}.{i // 3600:03d}Z", "temperature": 20 + i % 7 / 2}  # fmt: skip


@pytest.mark.parametrize("kill", ["delivered, not landed", "landed, not acknowledged"])
def test_mqtt_readings_land_once_through_a_kill(tmp_path: Path, broker: tuple[str, int],
                                                kill: str) -> None:  # fmt: skip
    before = kill.startswith("delivered")
    project = _project(tmp_path, {"max_batch_s": 60 if before else 0.2}, mqtt=broker)
    c = Collecting(project, {} if before else {"LAKEHOUSE_FAILPOINT": "stream_after_commit"})
    time.sleep(1)  # (subscribed: the session starts)
    _publish(broker, [_reading(i) for i in range(300)] + [b"not json"])
    if before:
        c.wait(lambda s: s["accepted"] == 300 and s["rejected"] == 1)
        c.kill()
    else:
        assert c.proc.wait(60) == 86
    _publish(broker, [_reading(i) for i in range(300, 400)])  # queued by the broker meanwhile

    project = _project(tmp_path, {"max_batch_s": 0.2}, mqtt=broker)
    again = Collecting(project)
    deadline = time.monotonic() + 60
    while raw_rows(project, "iot", "readings") < 400 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)  # (any redelivery would land by now)
    assert again.stop() == 0
    assert lake_sql(project, "SELECT count(*), count(DISTINCT (sensor_id, reading_at)), "
                    "count(DISTINCT _topic) FROM lake.iot.readings") == [(400, 400, 3)]  # fmt: skip
    assert lake_sql(project, "SELECT DISTINCT raw_record FROM lake._lakehouse.rejected_rows "
                    "WHERE source = 'iot'") == [("not json",)]  # fmt: skip
