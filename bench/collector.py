"""`collector`: events over HTTP into the lake, through `lakehouse collect`.

BENCH_COLLECTOR_CLIENTS client processes (default 3) each POST batches of 100 JSON
events of about 500 bytes, back to back over one keep-alive connection, for
BENCH_COLLECTOR_S seconds (default 20). `value`: events accepted per second; a poller
reads the lake like `lakehouse query` does every 50 ms, and per request the seconds from
its "accepted" (the 200) to its last event being visible give `p50_visible_s` and
`p95_visible_s`. `peak_rss_mb`: the collector's. The run checks that every accepted event
landed exactly once. `reference`: DuckDB inserting the same events from an in-process
list into a lake table (pyarrow from the dicts, one INSERT), as events/s.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import Measurement, PeakRss, in_processes, write_result

CLIENTS = int(os.environ.get("BENCH_COLLECTOR_CLIENTS", "3"))
SECONDS = float(os.environ.get("BENCH_COLLECTOR_S", "20"))
BATCH = 100
COLUMNS = {"event_id": "VARCHAR", "client": "INTEGER", "seq": "BIGINT", "session_id": "VARCHAR",
           "user_id": "BIGINT", "url": "VARCHAR", "referrer": "VARCHAR", "user_agent": "VARCHAR",
           "occurred_at": "TIMESTAMPTZ", "props": "JSON"}  # fmt: skip
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"


def event(client: int, seq: int) -> dict[str, Any]:
    return {
        "event_id": f"{client:02d}-{seq:012d}", "client": client, "seq": seq,
        "session_id": f"sess-{(seq // 20):010d}-{client}", "user_id": seq % 100_003,
        "url": f"/products/{seq % 5000}/reviews?page={seq % 7}&sort=helpful",
        "referrer": "https://www.example-search.com/search?q=wireless+headphones+noise",
        "user_agent": UA, "occurred_at": "2026-11-25T10:00:00.123456+00:00",
        "props": {"experiment": "checkout-v2", "variant": seq % 2, "cart_items": seq % 9,
                  "currency": "EUR", "screen": "1920x1080"},
    }  # fmt: skip


def _client(url: str, client: int, seconds: float, out: str) -> None:
    import orjson

    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    seq, accepted, throttled = 0, [], 0
    deadline = time.time() + seconds
    while time.time() < deadline:
        body = orjson.dumps([event(client, seq + i) for i in range(BATCH)])
        conn.request("POST", "/v1/web/events", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        if resp.status == 429:
            throttled += 1
            time.sleep(float(resp.getheader("Retry-After") or 1))
            continue
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}")
        seq += BATCH
        accepted.append((seq - 1, time.time()))
    Path(out).write_text(json.dumps({"accepted": accepted, "throttled": throttled}))


def _project(root: Path) -> Path:
    spec = {
        "lake": {"url": str(root / "lake")},
        "collector": {"port": 0, "log_dir": str(root / "log")},
        "sources": [{"name": "web", "kind": "events",
                     "tables": [{"name": "events", "columns": COLUMNS}]}],
    }  # fmt: skip
    path = root / "lakehouse.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _poll(path: Path, stop: threading.Event, seen: dict[int, list[tuple[float, int]]]) -> None:
    """What `lakehouse query` would see, every 50 ms: each client's highest visible seq."""
    from pipeline.config import load_project

    con = load_project(path).lake.connect(lake_read_only=True)
    while not stop.is_set():
        try:
            rows = con.execute("SELECT client, max(seq) FROM lake.web.events GROUP BY 1").fetchall()
        except Exception:  # (the table appears with the first micro-batch)
            rows = []
        now = time.time()
        for client, top in rows:
            seen.setdefault(client, []).append((now, top))
        time.sleep(0.05)
    con.close()


def _visible_after(accepted: list[tuple[int, float]], seen: list[tuple[float, int]]) -> list[float]:
    lags, i = [], 0
    for last_seq, at in accepted:
        while i < len(seen) and seen[i][1] < last_seq:
            i += 1
        if i < len(seen):
            lags.append(max(0.0, seen[i][0] - at))
    return lags


def _wait_url(log: Path, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = re.search(r"collecting on (http://[0-9.]+:[0-9]+)", log.read_text())
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise RuntimeError(f"the collector did not start: {log.read_text()[-2000:]}")


def _reference(root: Path, n: int) -> Measurement:
    import pyarrow as pa

    from lake.config import LakeSettings
    from lake.duck import connect

    events = [event(0, i) for i in range(n)]
    settings = LakeSettings.resolve(str(root / "ref_lake"), root, {}, None)
    con = connect(settings)
    cols = ", ".join(f"{c} {t}" for c, t in COLUMNS.items())
    con.execute(f"CREATE TABLE lake.main.events ({cols})")
    t0 = time.perf_counter()
    for c in ("props",):
        for e in events:
            e[c] = json.dumps(e[c])
    con.register("batch", pa.Table.from_pylist(events))
    con.execute("INSERT INTO lake.main.events SELECT * FROM batch")
    rate = n / (time.perf_counter() - t0)
    import psutil

    return Measurement(rate, psutil.Process().memory_info().rss / 1e6, {})


def run() -> dict[str, Any]:

    with tempfile.TemporaryDirectory(prefix="bench-collector-") as tmp:
        root = Path(tmp)
        path = _project(root)
        errors = (root / "collector.log").open("w+")
        server = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "--project", str(path), "collect"],
            stderr=errors, text=True,
        )  # fmt: skip
        url_s = _wait_url(root / "collector.log")
        stop = threading.Event()
        seen: dict[int, list[tuple[float, int]]] = {}
        poller = threading.Thread(target=_poll, args=(path, stop, seen), daemon=True)
        poller.start()
        peak = PeakRss(server.pid)
        results, t0, t1 = in_processes(_client, [(url_s, i, SECONDS) for i in range(CLIENTS)],
                                       root, "client")  # fmt: skip
        elapsed = t1 - t0
        total = sum(len(r["accepted"]) * BATCH for r in results)
        last = {i: r["accepted"][-1][0] for i, r in enumerate(results) if r["accepted"]}
        deadline = time.time() + 60
        while time.time() < deadline and any(
            not seen.get(i) or seen[i][-1][1] < top for i, top in last.items()
        ):
            time.sleep(0.1)
        stop.set()
        poller.join()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
        from pipeline.config import load_project

        con = load_project(path).lake.connect()
        landed, distinct = con.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM lake.web.events"
        ).fetchone() or (0, 0)
        con.close()
        if landed != total or distinct != total:
            raise RuntimeError(
                f"{total:,} events accepted, {landed:,} landed ({distinct:,} distinct)"
            )
        lags = sorted(x for i, r in enumerate(results)
                      for x in _visible_after(r["accepted"], seen.get(i, [])))  # fmt: skip
        rate = total / elapsed
        reference = _reference(root, min(total, 500_000))
        q = statistics.quantiles(lags, n=100)
        return write_result(
            "collector",
            Measurement(rate, peak.stop(), {}),
            reference,
            unit="events/s",
            events=total,
            clients=CLIENTS,
            seconds=round(elapsed, 1),
            throttled_requests=sum(r["throttled"] for r in results),
            p50_visible_s=round(q[49], 3),
            p95_visible_s=round(q[94], 3),
        )
