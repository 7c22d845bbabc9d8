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
        self.records: list[tuple[int, str, float]] = []  # /records: (id, body, amount)
        self.log: list[tuple[float, str, int]] = []  # (time, path?query, status)
        self.arrivals: list[str] = []  # every request, when it arrives
        # each keyed by a query marker ("page=2"); "*" matches every request
        self.fail_once: dict[str, int | tuple[int, dict[str, str]]] = {}  # status[, headers]
        self.malformed: set[str] = set()  # an HTML error page behind a 200, every time
        self.malformed_once: set[str] = set()
        self.truncated: set[str] = set()  # the JSON cut in the middle, a 200, every time
        self.drop_once: set[str] = set()  # the connection closes halfway through the body
        self.rewrite: dict[str, dict[str, str]] = {}  # "page=3" -> answered as {"page": "2"}
        self.max_page_size: int | None = None  # the API caps what `per_page`/`limit` asks
        self.link_origin: str | None = None  # the Link header points there
        self.always: dict[str, int] = {}  # marker -> an error status, every time
        self.slow_once: set[str] = set()  # answered after 1 s, once
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
                query = f"&{urlparse(self.path).query}&"
                length, sent = len(data), data
                if status == 200 and any(m == "*" or f"&{m}&" in query for m in api.truncated):
                    length, sent = len(data) // 2, data[: len(data) // 2]
                drop = next((m for m in api.drop_once if f"&{m}&" in query), None)
                if status == 200 and drop is not None:
                    api.drop_once.discard(drop)
                    sent = data[: len(data) // 2]  # and then the connection closes
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(sent)
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

                def hit(marker: str) -> bool:
                    return marker == "*" or f"&{marker}&" in query

                for marker in list(api.fail_once):
                    if hit(marker):
                        failure = api.fail_once.pop(marker)
                        status, headers = (
                            failure
                            if isinstance(failure, tuple)
                            else (failure, {"Retry-After": "1"} if failure == 429 else {})
                        )
                        return self._send(status, {"error": "try later"}, headers)
                for marker, status in api.always.items():
                    if hit(marker):
                        return self._send(status, {"error": "down"})
                slow = next((m for m in api.slow_once if hit(m)), None)
                if slow is not None:
                    api.slow_once.discard(slow)
                    time.sleep(1.0)
                once = next((m for m in api.malformed_once if hit(m)), None)
                if once is not None or any(hit(m) for m in api.malformed):
                    api.malformed_once.discard(once or "")
                    return self._send(200, "<html>502 Bad Gateway</html>")
                for marker, overrides in api.rewrite.items():
                    if hit(marker):
                        q.update(overrides)
                with api.lock:
                    rows = [r for r in api.reviews
                            if r["updated_at"] > q.get("updated_since", "")]  # fmt: skip
                size = int(q.get("per_page", q.get("limit", 10)))
                size = min(size, api.max_page_size or size)
                if parsed.path == "/slow":
                    time.sleep(1.0)
                    return self._send(200, {"data": []})
                if parsed.path == "/reviews":  # page numbers
                    page = int(q.get("page", 1))
                    return self._send(200, {"data": rows[(page - 1) * size : page * size]})
                if parsed.path == "/records":
                    page = int(q.get("page", 1))
                    chunk = api.records[(page - 1) * size : page * size]
                    return self._send(200, {"data": [{"id": i, "body": b, "amount": a}
                                                     for i, b, a in chunk]})  # fmt: skip
                if parsed.path == "/offset":
                    start = int(q.get("offset", 0))
                    return self._send(200, {"data": rows[start : start + size],
                                            "total": len(rows)})  # fmt: skip
                if parsed.path == "/cursor":
                    start = int(q.get("cursor", 0))
                    nxt = start + size if start + size < len(rows) else None
                    return self._send(200, {"data": rows[start : start + size],
                                            "paging": {"next": nxt}})  # fmt: skip
                if parsed.path == "/link":
                    page = int(q.get("page", 1))
                    headers = {}
                    if page * size < len(rows):
                        origin = api.link_origin or api.url
                        headers["Link"] = (
                            f'<{origin}/link?page={page + 1}&per_page={size}>; rel="next"'
                        )
                    return self._send(200, rows[(page - 1) * size : page * size], headers)
                return self._send(404, {"error": "no such endpoint"})

        return Handler
