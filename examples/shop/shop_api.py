"""The example shop's review vendor: a small paginated JSON API over `vendor/reviews.json`.

`lakehouse demo` runs it in the background so the `vendor` source has a real API to call:
bearer token auth, `?page=N&per_page=M`, `?updated_since=<ISO timestamp>`, and records
under `data`. Tests use the same server.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

DEMO_TOKEN = "demo-token"


class ShopApi:
    def __init__(self, reviews_file: Path, token: str = DEMO_TOKEN, port: int = 0) -> None:
        self.reviews_file, self.token = reviews_file, token
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._lock = threading.Lock()
        self._cache: tuple[int, list[dict[str, Any]], list[str]] | None = None
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """What lakehouse.yml's vendor source reads."""
        return {"SHOP_API_URL": self.url, "SHOP_API_TOKEN": self.token}

    def __enter__(self) -> ShopApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reviews_since(self, since: str) -> tuple[list[dict[str, Any]], int]:
        """All reviews oldest first, and where those updated after `since` start; the file
        is parsed once per change and a page is a slice of it."""
        with self._lock:
            stamp = self.reviews_file.stat().st_mtime_ns
            if self._cache is None or self._cache[0] != stamp:
                rows = json.loads(self.reviews_file.read_text())
                rows.sort(key=lambda r: (r["updated_at"], r["review_id"]))
                self._cache = (stamp, rows, [r["updated_at"] for r in rows])
            _, rows, keys = self._cache
        return rows, bisect.bisect_right(keys, since)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                if self.headers.get("Authorization") != f"Bearer {api.token}":
                    return self._json(401, {"error": "missing or wrong bearer token"})
                if url.path != "/v1/reviews":
                    return self._json(404, {"error": "not found"})
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                since = q.get("updated_since", "")
                rows, start = api.reviews_since(since)
                page, size = int(q.get("page", 1)), min(int(q.get("per_page", 100)), 500)
                chunk = rows[start + (page - 1) * size : start + page * size]
                return self._json(200, {"data": chunk, "page": page, "total": len(rows) - start})

        return Handler


def serve_until_interrupted(reviews_file: Path, port: int) -> None:
    """`lakehouse example-api`: the vendor API in the foreground, until Ctrl-C."""
    with ShopApi(reviews_file, port=port), contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)
