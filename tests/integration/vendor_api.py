"""A real HTTP server standing in for a vendor API (reviews), on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

TOKEN = "vendor-token-123"
API_KEY = "key-456"
USER, PASSWORD = "shop", "pa55word"


class VendorApi:
    def __init__(self, reviews: int = 45) -> None:
        self.reviews = [self.review(i) for i in range(1, reviews + 1)]
        self.log: list[tuple[float, str, int]] = []  # (time, path?query, status)
        self.arrivals: list[str] = []  # every request, when it arrives
        self.fail_once: dict[str, int] = {}  # "page=2" -> status to return once
        self.malformed: set[str] = set()  # "page=4": not JSON
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def review(i: int) -> dict[str, Any]:
        return {
            "review_id": i, "product_id": 1 + i % 7, "rating": 1 + i % 5,
            "body": f"review {i}", "meta": {"ip": f"10.0.0.{i % 3}", "tags": ["a"] * (i % 2)},
            "updated_at": f"2026-02-01T00:{i:02d}:00Z",
        }  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> VendorApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                api.log.append((time.monotonic(), self.path, status))

            def do_GET(self) -> None:
                api.arrivals.append(self.path)
                parsed = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(parsed.query).items()}
                basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                authed = self.headers.get("Authorization") in (f"Bearer {TOKEN}", basic) or (
                    API_KEY in (q.get("api_key"), self.headers.get("X-API-Key"))
                )
                if not authed:
                    return self._send(401, {"error": "unauthorized"})
                query = f"&{parsed.query}&"
                for marker in list(api.fail_once):
                    if f"&{marker}&" in query:
                        status = api.fail_once.pop(marker)
                        headers = {"Retry-After": "1"} if status == 429 else {}
                        return self._send(status, {"error": "try later"}, headers)
                if any(f"&{m}&" in query for m in api.malformed):
                    return self._send(200, "<html>502 Bad Gateway</html>")
                with api.lock:
                    rows = [r for r in api.reviews
                            if r["updated_at"] > q.get("updated_since", "")]  # fmt: skip
                size = int(q.get("per_page", q.get("limit", 10)))
                if parsed.path == "/slow":
                    time.sleep(1.0)
                    return self._send(200, {"data": []})
                if parsed.path == "/reviews":  # page numbers
                    page = int(q.get("page", 1))
                    return self._send(200, {"data": rows[(page - 1) * size : page * size]})
                if parsed.path == "/offset":
                    start = int(q.get("offset", 0))
                    return self._send(200, {"data": rows[start : start + size]})
                if parsed.path == "/cursor":
                    start = int(q.get("cursor", 0))
                    nxt = start + size if start + size < len(rows) else None
                    return self._send(200, {"data": rows[start : start + size],
                                            "paging": {"next": nxt}})  # fmt: skip
                if parsed.path == "/link":
                    page = int(q.get("page", 1))
                    headers = {}
                    if page * size < len(rows):
                        headers["Link"] = (
                            f'<{api.url}/link?page={page + 1}&per_page={size}>; rel="next"'
                        )
                    return self._send(200, rows[(page - 1) * size : page * size], headers)
                return self._send(404, {"error": "no such endpoint"})

        return Handler
