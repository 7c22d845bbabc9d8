"""Real-time benchmarks: an event's way to a published mart, and MQTT into the lake.

- `event_to_mart`: the example shop (BENCH_REALTIME_SCALE, default 1) published by a
  batch `lakehouse run`; then `lakehouse collect` and `lakehouse stream` run while a
  client posts BENCH_REALTIME_RATE events/s (default 1,000: clicks, and 5% reviews, so
  the real-time marts rebuild back to back). Every 2 s a probe posts a fraud ring (three
  reviews from one IP); the seconds until the ring's third review is flagged in the
  published `fct_reviews` (as `lakehouse query` reads it) give `p50_s` and `p95_s`;
  `value` is the p95, over BENCH_REALTIME_PROBES probes (default 20). `reference`: the
  same probe landed by the collector and published by a batch `lakehouse run`.
  `peak_rss_mb`: the stream process's.
- `mqtt`: BENCH_MQTT_PUBLISHERS processes (default 2) publish readings at QoS 1 to a
  real Mosquitto while `lakehouse collect` subscribes. First for 10 s at
  BENCH_MQTT_RATE readings/s in all (default 3,000): `p50_visible_s`/`p95_visible_s`,
  from the broker's acknowledgement of a publish to the reading being visible in the
  lake. Then as fast as the broker takes them for BENCH_MQTT_S seconds (default 15):
  `value`, readings/s into the lake until the last is visible. Every reading must land
  exactly once (checked). `reference`: a bare paho subscriber at QoS 1 receiving the
  flat-out load (the broker and client's own ceiling), readings/s.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bench.collector import _visible_after, _wait_url
from bench.common import DATA, RESULTS, Measurement, PeakRss, in_processes, write_result

SCALE = float(os.environ.get("BENCH_REALTIME_SCALE", "1"))
RATE = int(os.environ.get("BENCH_REALTIME_RATE", "1000"))
PROBES = int(os.environ.get("BENCH_REALTIME_PROBES", "20"))
PUBLISHERS = int(os.environ.get("BENCH_MQTT_PUBLISHERS", "2"))
MQTT_S = float(os.environ.get("BENCH_MQTT_S", "15"))
PACED_RATE = float(os.environ.get("BENCH_MQTT_RATE", "3000"))
PACED_S = 10.0
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
PROBE_IDS = 900_000_000  # (above the vendor's review ids: fct_reviews holds both)


def _service(project: Path, command: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen([LAKEHOUSE, "--project", str(project), command],
                            stderr=log.open("w"), stdout=subprocess.DEVNULL)  # fmt: skip


def _must(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd} exited {done.returncode}: {done.stderr[-3000:]}")


def _post(url: str, stream: str, events: list[dict]) -> None:
    import requests

    r = requests.post(f"{url}/v1/{stream}", data=json.dumps(events), timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"{stream}: HTTP {r.status_code} {r.text[:300]}")


def _load(url: str, rate: int, stop_file: str) -> None:
    """`rate` events/s in posts of 100: clicks, one review in 20."""
    import requests

    session, seq, t0 = requests.Session(), 0, time.monotonic()
    while not Path(stop_file).exists():
        clicks = [{"event_id": f"load-{seq + i}", "session_id": f"s{(seq + i) // 30}",
                   "event_type": "page_view", "product_id": (seq + i) % 300 + 1,
                   "url": f"/p/{(seq + i) % 300 + 1}",
                   "occurred_at": datetime.now(UTC).isoformat()} for i in range(95)]  # fmt: skip
        reviews = [{"review_id": 5_000_000 + seq + i, "product_id": (seq + i) % 300 + 1,
                    "customer_id": (seq + i) % 2000 + 1, "rating": 4,
                    "body": f"fine {seq + i}", "author_ip": f"198.51.100.{i}",
                    "posted_at": datetime.now(UTC).isoformat()} for i in range(5)]  # fmt: skip
        session.post(f"{url}/v1/live/clicks", data=json.dumps(clicks), timeout=30)
        session.post(f"{url}/v1/live/reviews", data=json.dumps(reviews), timeout=30)
        seq += 100
        ahead = seq / rate - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)


def _ring(base: int) -> list[dict]:
    now = datetime.now(UTC)
    return [{"review_id": PROBE_IDS + base + i, "product_id": 7,
             "customer_id": 10_000_000 + base + i,
             "rating": 5, "body": f"BEST EVER {base}", "author_ip": f"203.0.113.{base % 250}",
             "posted_at": (now + timedelta(minutes=i)).isoformat()} for i in range(3)]  # fmt: skip


def _flagged_after(reader: Any, url: str, base: int, timeout_s: float = 300) -> float:
    """Post a ring, then read the published `fct_reviews` every 0.25 s (one read-only
    connection, as an analyst's session: each query sees the latest publication)."""
    _post(url, "live/reviews", _ring(base))
    t0 = time.monotonic()
    sql = f"SELECT is_suspected_fraud FROM fct_reviews WHERE review_id = {PROBE_IDS + base + 2}"
    while time.monotonic() - t0 < timeout_s:
        rows = reader.execute(sql).fetchall()
        if rows and rows[0][0]:
            return time.monotonic() - t0
        time.sleep(0.25)
    raise RuntimeError(f"probe {base} was not flagged in {timeout_s:g} s")


def run_event_to_mart() -> dict[str, Any]:

    from bench.dbt_build import make_shop_project
    from examples.shop.shop_api import ShopApi

    DATA.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-realtime-", dir=DATA) as tmp:
        root = Path(tmp)
        project = make_shop_project(root, SCALE)
        spec = yaml.safe_load(project.path.read_text())
        spec["collector"] = {"port": 0, "log_dir": str(root / "collector")}
        project.path.write_text(yaml.safe_dump(spec, sort_keys=False))
        from pipeline.config import load_project

        project = load_project(project.path)
        with ShopApi(project.base_dir / "sources" / "vendor" / "reviews.json") as api:
            os.environ.update(api.env())
            run = [LAKEHOUSE, "--project", str(project.path), "run"]
            _must(run)
            collector = _service(project.path, "collect", root / "collect.log")
            url = _wait_url(root / "collect.log")
            # reference: the probe through a batch run
            t0 = time.monotonic()
            _post(url, "live/reviews", _ring(1_000))
            time.sleep(project.spec.collector.max_batch_s * 2)  # (in the lake)
            _must(run)
            batch_s = time.monotonic() - t0
            streamer = _service(project.path, "stream", root / "stream.log")
            peak = PeakRss(streamer.pid, every_s=0.2)
            from pipeline.serve import connect_serving

            reader = connect_serving(project)
            _flagged_after(reader, url, 2_000)  # (its first cycles are done)
            stop_file = root / "stop-load"
            load = multiprocessing.get_context("spawn").Process(
                target=_load, args=(url, RATE, str(stop_file)))  # fmt: skip
            load.start()
            lags = []
            for i in range(PROBES):
                lags.append(_flagged_after(reader, url, 10_000 + 10 * i))
                time.sleep(2)
            stop_file.touch()
            load.join(60)
            peak_mb = peak.stop()
            reader.close()
            for proc in (streamer, collector):
                proc.send_signal(signal.SIGTERM)
                proc.wait(120)
            log = (root / "stream.log").read_text()
            RESULTS.mkdir(parents=True, exist_ok=True)
            (RESULTS / "event_to_mart.stream.log").write_text(log)  # (the cycles, for reading)
            cycles = _cycle_steps(log)
        q = statistics.quantiles(lags, n=20)
        return write_result("event_to_mart", Measurement(q[18], peak_mb, {}),
                            Measurement(batch_s, 0, {}), scale=SCALE, probes=PROBES,
                            load_events_per_s=RATE, p50_s=round(statistics.median(lags), 3),
                            p95_s=round(q[18], 3), max_s=round(max(lags), 3),
                            target_p95_s=10, **cycles)  # fmt: skip


def _cycle_steps(log: str) -> dict[str, Any]:
    """The stream's cycles from its log: how many published, how many did not, and the
    median and slowest seconds of each step (build, gate, publish)."""
    lines = [line for line in log.splitlines() if " new batches -> " in line]
    steps: dict[str, list[float]] = {}
    for line in lines:
        for step, seconds in re.findall(r"(\w+) ([0-9.]+)s", line.rpartition("(")[2]):
            steps.setdefault(step, []).append(float(seconds))
    return {
        "stream_cycles": sum("published at snapshot" in line for line in lines),
        "stream_cycles_not_published": sum("NOT published" in line for line in lines),
        **{f"{step}_p50_s": round(statistics.median(v), 2) for step, v in steps.items()},
        **{f"{step}_max_s": round(max(v), 2) for step, v in steps.items()},
    }


def _publisher(port: int, index: int, seconds: float, rate: float, phase: str, out: str) -> None:
    """Publish readings for `seconds`, at `rate` a second (0: as fast as the broker takes
    them); records when the broker acknowledged each 500th (50th when paced)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{phase}{index}")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    acked: list[tuple[int, float]] = []
    seq, pending = 0, []
    t0 = time.time()
    deadline = t0 + seconds
    while time.time() < deadline:
        payload = json.dumps({"sensor_id": f"{phase}{index}", "seq": seq, "temperature_c": 4.5,
                              "read_at": datetime.now(UTC).isoformat()})  # fmt: skip
        pending.append((seq, client.publish(f"warehouses/{index}/sensors", payload, qos=1)))
        seq += 1
        if rate and seq / rate > time.time() - t0:  # paced
            time.sleep(seq / rate - (time.time() - t0))
        if len(pending) >= (50 if rate else 500):
            for _, info in pending:
                info.wait_for_publish(60)
            acked.append((pending[-1][0], time.time()))
            pending = []
    for _, info in pending:
        info.wait_for_publish(60)
    if pending:
        acked.append((pending[-1][0], time.time()))
    client.disconnect()
    client.loop_stop()
    Path(out).write_text(json.dumps({"acked": acked, "sent": seq}))


def _bare_subscriber(port: int, expected: int, out: str) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    got = [0, 0.0, 0.0]

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        json.loads(msg.payload)
        if got[0] == 0:
            got[1] = time.time()
        got[0] += 1
        got[2] = time.time()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_connect = lambda c, *a: c.subscribe("warehouses/+/sensors", qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    Path(out + ".ready").touch()
    deadline = time.time() + 600
    while got[0] < expected and time.time() < deadline:
        time.sleep(0.05)
    client.loop_stop()
    Path(out).write_text(json.dumps({"received": got[0]}))


def _publish_all(port: int, root: Path, tag: str, seconds: float = MQTT_S, rate: float = 0
                 ) -> tuple[list[dict], float, float]:  # fmt: skip
    args = [(port, i, seconds, rate / PUBLISHERS, tag) for i in range(PUBLISHERS)]
    return in_processes(_publisher, args, root, tag)


def run_mqtt() -> dict[str, Any]:

    from tests.mosquitto import mosquitto_server

    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp, \
            mosquitto_server() as (_, port):  # fmt: skip
        root = Path(tmp)
        # reference: the same publishers, a bare subscriber
        bare_out = str(root / "bare.json")
        ctx = multiprocessing.get_context("spawn")
        sub = ctx.Process(target=_bare_subscriber, args=(port, 10**12, bare_out))
        sub.start()
        while not Path(bare_out + ".ready").exists():
            time.sleep(0.05)
        time.sleep(0.5)
        pubs, t0, t1 = _publish_all(port, root, "bare")
        sent = sum(p["sent"] for p in pubs)
        time.sleep(2)
        sub.terminate()
        bare_rate = sent / (t1 - t0)

        spec = {"lake": {"url": str(root / "lake")},
                "collector": {"port": 0, "log_dir": str(root / "log")},
                "sources": [{"name": "sensors", "kind": "mqtt",
                             "mqtt": {"port": port},
                             "tables": [{"name": "readings", "topic": "warehouses/+/sensors",
                                         "primary_key": ["sensor_id", "seq"],
                                         "columns": {"sensor_id": "VARCHAR", "seq": "BIGINT",
                                                     "temperature_c": "DOUBLE",
                                                     "read_at": "TIMESTAMPTZ"}}]}]}  # fmt: skip
        path = root / "lakehouse.yml"
        path.write_text(yaml.safe_dump(spec))
        collector = _service(path, "collect", root / "collect.log")
        _wait_url(root / "collect.log")
        time.sleep(1)  # (subscribed)
        peak = PeakRss(collector.pid)
        seen: dict[str, list[tuple[float, int]]] = {}
        stop = threading.Event()

        def poll() -> None:
            from pipeline.config import load_project

            con = load_project(path).lake.connect(lake_read_only=True)
            while not stop.is_set():
                rows = con.execute("SELECT sensor_id, max(seq) FROM lake.sensors.readings "
                                   "GROUP BY 1").fetchall()  # fmt: skip
                now = time.time()
                for sensor, top in rows:
                    seen.setdefault(sensor, []).append((now, top))
                time.sleep(0.05)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()

        def landed(pubs: list[dict], tag: str) -> float:
            sent = {f"{tag}{i}": p["sent"] for i, p in enumerate(pubs)}
            deadline = time.time() + 300
            while time.time() < deadline and any(
                not seen.get(s) or seen[s][-1][1] < n - 1 for s, n in sent.items()
            ):
                time.sleep(0.1)
            return max(seen[s][-1][0] for s in sent)

        # latency at a rate the collector keeps up with, then throughput flat out
        paced, _, _ = _publish_all(port, root, "paced", PACED_S, PACED_RATE)
        landed(paced, "paced")
        flat, t0, _ = _publish_all(port, root, "flat")
        rate = sum(p["sent"] for p in flat) / (landed(flat, "flat") - t0)
        stop.set()
        poller.join()
        collector.send_signal(signal.SIGTERM)
        collector.wait(120)
        from pipeline.config import load_project

        con = load_project(path).lake.connect()
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT (sensor_id, seq)) FROM lake.sensors.readings"
        ).fetchone() or (0, 0)
        con.close()
        sent = sum(p["sent"] for p in paced + flat)
        if total != sent or distinct != total:
            raise RuntimeError(f"{sent:,} published, {total:,} landed ({distinct:,} distinct)")
        lags = sorted(x for i, p in enumerate(paced)
                      for x in _visible_after([tuple(a) for a in p["acked"]],
                                              seen.get(f"paced{i}", [])))  # fmt: skip
        q = statistics.quantiles(lags, n=100)
        return write_result(
            "mqtt", Measurement(rate, peak.stop(), {}), Measurement(bare_rate, 0, {}),
            unit="readings/s", readings=total, publishers=PUBLISHERS,
            paced_rate_per_s=PACED_RATE, p50_visible_s=round(q[49], 3),
            p95_visible_s=round(q[94], 3),
        )  # fmt: skip
