"""`lakehouse demo --live`: the example shop in real time.

Starts `lakehouse collect` and `lakehouse stream` (and a Mosquitto broker when the
`sensors` source points at this machine and none listens), then plays the shop: clicks
and reviews posted to the collector, a fraud ring now and then, cold-storage readings
published over MQTT. One line a second: events/s, the lake's lag, the latest fraud flag.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import requests

from examples.shop.shop_data import ShopSize
from pipeline.config import Project

BROKER_CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 0
max_queued_messages 0
"""
"""A broker feeding a lake: no cap on the messages in flight to a client that acknowledges a
whole micro-batch at once (default 20), none on those queued while it is away (1,000)."""


def mosquitto_bin() -> str | None:
    sbin = Path("/usr/sbin/mosquitto")  # (not on a non-root PATH)
    return shutil.which("mosquitto") or (str(sbin) if sbin.exists() else None)


@contextlib.contextmanager
def local_broker(port: int) -> Iterator[tuple[str, int]]:
    """A throwaway Mosquitto on 127.0.0.1:`port`, stopped on the way out."""
    binary = mosquitto_bin()
    if binary is None:
        raise RuntimeError("mosquitto not found: install it (Debian: apt-get install "
                           "mosquitto; `make install` does)")  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="lakehouse-mqtt-"))
    (root / "mosquitto.conf").write_text(BROKER_CONFIG.format(port=port))
    with (root / "mosquitto.log").open("w") as log:
        proc = subprocess.Popen([binary, "-c", str(root / "mosquitto.conf")], stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while not _listening(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    said = (root / "mosquitto.log").read_text()[-500:]
                    raise RuntimeError(f"mosquitto did not start: {said}")
                time.sleep(0.05)
            yield "127.0.0.1", port
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            if proc.poll() is None:
                proc.kill()
            shutil.rmtree(root, ignore_errors=True)


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


class Player:
    """Posts the shop's clicks and reviews, and publishes its sensors' readings."""

    def __init__(self, url: str, rate: int, customers: int, mqtt: tuple[str, int] | None) -> None:
        self.url, self.rate, self.customers = url, rate, customers
        self.rng = random.Random(7)
        self.session = requests.Session()
        self.ids = itertools.count(int(time.time()) * 1000)  # new ids on every demo
        self.posted = 0
        self.mqtt: Any = None
        if mqtt:
            import paho.mqtt.client as paho
            from paho.mqtt.enums import CallbackAPIVersion

            self.mqtt = paho.Client(CallbackAPIVersion.VERSION2, client_id="shop-sensors")
            self.mqtt.connect(*mqtt)
            self.mqtt.loop_start()

    def post(self, stream: str, events: list[dict]) -> None:
        r = self.session.post(f"{self.url}/v1/live/{stream}", data=json.dumps(events), timeout=30)
        if r.status_code == 429:
            time.sleep(float(r.headers.get("Retry-After", "1")))
        elif r.status_code != 200:
            raise RuntimeError(f"the collector refused {stream}: {r.status_code} {r.text[:200]}")
        self.posted += len(events)

    def second(self, tick: int) -> None:
        now = datetime.now(UTC)
        clicks = [{"event_id": f"e{next(self.ids)}", "session_id": f"s{self.rng.randrange(500)}",
                   "customer_id": self.rng.randrange(1, self.customers + 1),
                   "event_type": self.rng.choice(["page_view"] * 6 + ["add_to_cart", "checkout"]),
                   "product_id": self.rng.randrange(1, 301), "url": "/products",
                   "occurred_at": now.isoformat()} for _ in range(self.rate * 9 // 10)]  # fmt: skip
        reviews = [{"review_id": next(self.ids), "product_id": self.rng.randrange(1, 301),
                    "customer_id": self.rng.randrange(1, self.customers + 1),
                    "rating": self.rng.randint(1, 5), "body": f"review {self.rng.random():.6f}",
                    "author_ip": f"198.51.100.{self.rng.randrange(250)}",
                    "author_verified": True, "posted_at": now.isoformat()}
                   for _ in range(max(1, self.rate // 10))]  # fmt: skip
        if tick % 10 == 5:  # a fraud ring: new accounts, one IP, one text, minutes apart
            ip, text = f"203.0.113.{tick % 250}", f"Life changing product!!! #{tick}"
            reviews += [{"review_id": next(self.ids), "product_id": self.rng.randrange(1, 301),
                         "customer_id": 10_000_000 + tick * 10 + i, "rating": 5, "body": text,
                         "author_ip": ip, "author_verified": False,
                         "posted_at": (now + timedelta(minutes=i)).isoformat()}
                        for i in range(3)]  # fmt: skip
        self.post("clicks", clicks)
        self.post("reviews", reviews)
        if self.mqtt is not None:
            for w in (1, 2, 3):
                for s in range(1, 5):
                    reading = {"sensor_id": f"cold-{w}-{s}", "warehouse_id": w,
                               "temperature_c": round(self.rng.gauss(5, 1.5), 2),
                               "read_at": now.isoformat()}  # fmt: skip
                    self.mqtt.publish(f"warehouses/{w}/sensors", json.dumps(reading), qos=1)
                    self.posted += 1

    def close(self) -> None:
        if self.mqtt is not None:
            self.mqtt.loop_stop()
            self.mqtt.disconnect()


def _service(project: Project, command: str, log: Path) -> subprocess.Popen:
    out = log.open("w")
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "--project",
                             str(project.path), command], stdout=out, stderr=out)  # fmt: skip


def _wait_for_url(project: Project, proc: subprocess.Popen, log: Path) -> str:
    info = project.collector_log_dir / "collector.json"
    deadline = time.monotonic() + 60
    while not info.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the collector did not start: {log.read_text()[-1000:]}")
        time.sleep(0.1)
    return str(json.loads(info.read_text())["url"])


def _latest_flag(project: Project) -> str:
    from pipeline.serve import current, query

    published = current(project)
    age = (datetime.now(UTC) - published.published_at).total_seconds() if published else None
    rows = query(project, "SELECT review_id, fraud_reasons FROM fct_reviews WHERE "
                 "is_suspected_fraud ORDER BY reviewed_at DESC LIMIT 1")[1]  # fmt: skip
    flag = f"review {rows[0][0]}: {', '.join(rows[0][1])}" if rows else "none yet"
    return f"published {age:.0f}s ago | latest fraud flag: {flag}" if age is not None else flag


def run_live(project: Project, seconds: float | None, scale: float = 1, rate: int = 200) -> None:
    """Until Ctrl-C (or `seconds`): collector, stream, broker and the shop's traffic."""
    logs = project.warehouse_dir / "live"
    logs.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with contextlib.ExitStack() as stack:
        mqtt = next((s.mqtt for s in project.spec.sources if s.mqtt is not None), None)
        broker = None
        if mqtt is not None and mqtt.host in ("127.0.0.1", "localhost"):
            broker = (mqtt.host, mqtt.port)
            if not _listening(mqtt.port) and mosquitto_bin():
                stack.enter_context(local_broker(mqtt.port))
            elif not _listening(mqtt.port):
                click.echo("no MQTT broker (install mosquitto): sensor readings left out")
                broker = None
        procs = [_service(project, "collect", logs / "collect.log")]
        url = _wait_for_url(project, procs[0], logs / "collect.log")
        procs.append(_service(project, "stream", logs / "stream.log"))
        customers = ShopSize.at(scale).customers  # the ids `lakehouse demo` generated
        player = Player(url, rate, customers, broker)
        click.echo(f"live: collector {url}, stream and traffic running (logs in {logs}); "
                   "Ctrl-C stops")  # fmt: skip
        started, tick = time.monotonic(), 0
        try:
            while not stop.is_set() and (seconds is None or time.monotonic() - started < seconds):
                t0 = time.monotonic()
                player.second(tick)
                tick += 1
                if tick % 2 == 0:
                    health = requests.get(f"{url}/health", timeout=10).json()
                    rate_now = player.posted / (time.monotonic() - started)
                    click.echo(f"{datetime.now():%H:%M:%S} {rate_now:,.0f} events/s | lake lag "
                               f"{health['lag_s']:.1f}s, {health['landed']:,} landed | "
                               f"{_latest_flag(project)}")  # fmt: skip
                stop.wait(max(0.0, 1 - (time.monotonic() - t0)))
        finally:
            player.close()
            for proc in reversed(procs):
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(120)
