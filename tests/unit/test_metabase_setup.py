"""docker-compose's `metabase-setup` against a local HTTP server that answers as a fresh
Metabase does (its setup API): it waits for health, sets up once, with the serving
database as the read-only BI role, and leaves a set-up Metabase alone."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pipeline.metabase import set_up


class FreshMetabase(BaseHTTPRequestHandler):
    state: dict[str, Any] = {}

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/api/health":
            self.state["health_calls"] += 1
            starting = self.state["health_calls"] <= 2  # Metabase takes a while to start
            self._send(503 if starting else 200, {"status": "starting" if starting else "ok"})
        elif self.path == "/api/session/properties":
            done = self.state["setup"] is not None
            self._send(200, {"has-user-setup": done, "setup-token": None if done else "tok-1"})
        else:
            self._send(404, {})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/api/setup" and body.get("token") == "tok-1":
            self.state["setup"] = body
            self._send(200, {"id": "session"})
        else:
            self._send(403, {"message": "bad token"})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def metabase() -> Iterator[str]:
    FreshMetabase.state = {"health_calls": 0, "setup": None}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FreshMetabase)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_metabase_is_pointed_at_the_served_marts_once(metabase: str) -> None:
    env = {
        "MB_ADMIN_EMAIL": "a@example.com",
        "MB_ADMIN_PASSWORD": "pw-123456a",
        "BI_READER_PASSWORD": "bi-pw",
        "SERVING_HOST": "postgres",
        "SERVING_DB": "serving",
    }
    assert set_up(metabase, env, wait_s=30) == "set up"
    assert FreshMetabase.state["health_calls"] >= 3  # it waited for a healthy Metabase
    db = FreshMetabase.state["setup"]["database"]
    assert db["engine"] == "postgres"
    assert db["details"] | {"password": "?"} == {
        "host": "postgres", "port": 5432, "dbname": "serving", "user": "lakehouse_bi",
        "password": "?", "ssl": False, "schema-filters-type": "inclusion",
        "schema-filters-patterns": "marts",
    }  # fmt: skip
    assert db["details"]["password"] == "bi-pw"
    assert FreshMetabase.state["setup"]["prefs"]["allow_tracking"] is False
    first = FreshMetabase.state["setup"]
    assert set_up(metabase, env, wait_s=30) == "already set up"
    assert FreshMetabase.state["setup"] is first
