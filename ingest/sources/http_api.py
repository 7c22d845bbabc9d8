"""HTTP APIs (requests): paginated JSON, politely, incrementally.

One run of a table is one extract: every page is fetched into a local JSON Lines spool
(memory bounded by one page), which DuckDB then reads and types like any JSON file. A
page that is not JSON is quarantined with its URL and page number; with page or offset
pagination the next pages are still fetched, with a cursor or Link header (where the
next page is in the bad one) the table fails. Re-running with nothing new lands nothing:
a spool whose content matches the last batch is skipped.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import duckdb
import requests

from ingest.config import HttpOptions
from ingest.errors import IngestError
from ingest.sources.base import Extract, Opened, Source
from lake import TableState
from lake.duck import quote_str

MAX_BAD_PAGES_IN_A_ROW = 3


class _Throttle:
    """At most `rate` requests per second, shared by every table of the source."""

    _locks: dict[str, threading.Lock] = {}
    _last: dict[str, float] = {}

    def __init__(self, key: str, rate: float | None) -> None:
        self.key, self.interval = key, (1.0 / rate if rate else 0.0)
        self._locks.setdefault(key, threading.Lock())

    def wait(self) -> None:
        if not self.interval:
            return
        with self._locks[self.key]:
            now = time.monotonic()
            ready = self._last.get(self.key, 0.0) + self.interval
            if now < ready:
                time.sleep(ready - now)
            self._last[self.key] = time.monotonic()


def _dig(body: Any, path: str | None) -> Any:
    if not path:
        return body
    for part in path.split("."):
        if not isinstance(body, dict) or part not in body:
            return None
        body = body[part]
    return body


def _retry_after(value: str | None, cap: float) -> float:
    if not value:
        return 1.0
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        seconds = parsed.timestamp() - time.time()
    return max(0.0, min(seconds, cap))


class HttpApiSource(Source):
    kind = "http"

    @property
    def options(self) -> HttpOptions:
        assert self.source.http is not None
        return self.source.http

    @property
    def url(self) -> str:
        assert self.table.endpoint is not None
        return self.options.base_url.rstrip("/") + "/" + self.table.endpoint.lstrip("/")

    def _fail(self, cause: str, where: str | None = None) -> IngestError:
        for secret in self.options.auth.secrets():
            cause = cause.replace(secret, "***")
        return IngestError(self.source.name, self.table.name, cause, where)

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.headers.update(self.options.headers)
        auth = self.options.auth
        if auth.type == "bearer":
            session.headers["Authorization"] = f"Bearer {auth.token}"
        elif auth.type == "basic":
            session.auth = (auth.username or "", auth.password or "")
        elif auth.type == "api_key" and auth.location == "header":
            session.headers[auth.name or "X-API-Key"] = auth.value or ""
        return session

    def _get(self, session: requests.Session, url: str, params: dict[str, Any],
             throttle: _Throttle, page: int) -> requests.Response:  # fmt: skip
        o = self.options
        if o.auth.type == "api_key" and o.auth.location == "query":
            params = {**params, (o.auth.name or "api_key"): o.auth.value}
        where = f"{self.url} page {page}"
        attempt = 0
        while True:
            throttle.wait()
            try:
                response = session.get(url, params=params, timeout=o.timeout_s)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= o.max_retries:
                    raise self._fail(
                        f"{type(exc).__name__} after {attempt + 1} tries", where
                    ) from None
                delay = o.backoff_s * 2**attempt * (1 + random.random())
            else:
                if response.status_code == 429:
                    if attempt >= o.max_retries:
                        raise self._fail(f"HTTP 429 after {attempt + 1} tries", where)
                    delay = _retry_after(response.headers.get("Retry-After"), o.max_retry_after_s)
                elif response.status_code >= 500:
                    if attempt >= o.max_retries:
                        raise self._fail(f"HTTP {response.status_code} after {attempt + 1} tries",
                                         where)  # fmt: skip
                    delay = o.backoff_s * 2**attempt * (1 + random.random())
                elif response.status_code >= 400:
                    raise self._fail(f"HTTP {response.status_code}: {response.text[:200]}", where)
                else:
                    return response
            attempt += 1
            time.sleep(delay)

    def _pages(self, session: requests.Session, state: TableState,
               bad: list[dict[str, Any]]) -> Iterator[list[Any]]:  # fmt: skip
        """The records of each page, in order; bad pages go to `bad`."""
        p = self.table.paginate
        params: dict[str, Any] = dict(self.table.params)
        if self.table.cursor_param and state.watermark is not None:
            params[self.table.cursor_param] = state.watermark
        throttle = _Throttle(self.source.name, self.options.rate_limit_per_s)
        number, offset, url_params, url = p.start, 0, params, self.url
        bad_in_a_row = 0
        for page in range(1, p.max_pages + 1):
            if p.type == "page":
                url_params = {**params, p.param: number}
            elif p.type == "offset":
                url_params = {**params, p.offset_param: offset, p.limit_param: p.limit}
            response = self._get(session, url, url_params, throttle, page)
            try:
                body = response.json()
            except ValueError:
                bad.append({
                    "source_file": f"{url}?{urlencode(url_params)}" if url_params else url,
                    "line": page, "column_name": None, "error_type": "INVALID PAGE",
                    "raw_record": response.text[:2000], "reason": "page is not JSON",
                })  # fmt: skip
                if p.type in ("cursor", "link_header"):
                    raise self._fail("a page is not JSON and holds the next page's address",
                                     f"{self.url} page {page}") from None  # fmt: skip
                bad_in_a_row += 1
                if bad_in_a_row >= MAX_BAD_PAGES_IN_A_ROW:
                    raise self._fail(f"{bad_in_a_row} pages in a row are not JSON",
                                     f"{self.url} page {page}") from None  # fmt: skip
                body = None
            else:
                bad_in_a_row = 0
            records = _dig(body, self.table.records_path) if body is not None else []
            if body is not None and not isinstance(records, list):
                raise self._fail(f"no list of records at {self.table.records_path!r}",
                                 f"{self.url} page {page}")  # fmt: skip
            if records:
                yield records
            if p.type == "none":
                return
            if p.type == "page":
                if body is not None and not records:
                    return
                number += 1
            elif p.type == "offset":
                if body is not None and len(records) < p.limit:
                    return
                offset += p.limit
            elif p.type == "cursor":
                token = _dig(body, p.cursor_path)
                if not token:
                    return
                url_params = {**params, p.cursor_param: token}
            elif p.type == "link_header":
                # the Link header carries the full next URL, its parameters included
                url = response.links.get("next", {}).get("url", "")
                if not url:
                    return
                url_params = {}
        raise self._fail(f"more than {p.max_pages} pages: raise paginate.max_pages")

    def extracts(self, con: duckdb.DuckDBPyConnection, state: TableState) -> Iterator[Extract]:
        description = self.url  # no query string: it may hold an API key
        bad: list[dict[str, Any]] = []
        spool = tempfile.NamedTemporaryFile(  # noqa: SIM115
            "w", prefix="lakehouse-http-", suffix=".jsonl", delete=False
        )
        digest, count = hashlib.sha256(), 0
        newest: Any = None  # the cursor's max, as the API sends it
        try:
            with spool, self._session() as session:
                for records in self._pages(session, state, bad):
                    for record in records:
                        line = json.dumps(record, separators=(",", ":"), sort_keys=True)
                        spool.write(line + "\n")
                        digest.update(line.encode())
                        count += 1
                        if self.table.cursor and isinstance(record, dict):
                            newest = _later(newest, record.get(self.table.cursor))
        except BaseException:
            os.unlink(spool.name)
            raise
        fingerprint = hashlib.sha256(
            f"{description}\0{state.watermark}\0{digest.hexdigest()}".encode()
        ).hexdigest()
        if (count == 0 and not bad) or fingerprint in state.fingerprints:
            os.unlink(spool.name)
            return
        meta = {"records": count, "bad_pages": len(bad), "from": state.watermark}
        watermark = state.watermark if newest is None else str(newest)
        yield Extract(fingerprint, description, self._opener(spool.name, bad), meta,
                      watermark_column=self.table.cursor, watermark=watermark)  # fmt: skip

    def _opener(
        self, spool: str, bad: list[dict[str, Any]]
    ) -> Callable[[duckdb.DuckDBPyConnection], Opened]:
        def open_(con: duckdb.DuckDBPyConnection) -> Opened:
            rejects_file = spool + ".rejects.jsonl"
            with open(rejects_file, "w") as fh:
                for item in bad:
                    fh.write(json.dumps(item) + "\n")

            def rejects() -> duckdb.DuckDBPyRelation | None:
                if not bad:
                    return None
                return con.sql(
                    f"SELECT source_file, line::BIGINT AS line, column_name::VARCHAR AS "
                    "column_name, error_type, raw_record, reason FROM read_json("
                    f"{quote_str(rejects_file)}, format='newline_delimited', "
                    "columns={source_file: 'VARCHAR', line: 'BIGINT', column_name: 'VARCHAR', "
                    "error_type: 'VARCHAR', raw_record: 'VARCHAR', reason: 'VARCHAR'})"
                )

            def cleanup() -> None:
                for path in (spool, rejects_file):
                    if os.path.exists(path):
                        os.unlink(path)

            if os.path.getsize(spool) == 0:  # only bad pages: an empty batch, its rejects
                stream = con.sql("SELECT NULL::VARCHAR AS _empty WHERE false")
            else:
                stream = con.sql(
                    f"SELECT * FROM read_json({quote_str(spool)}, format='newline_delimited', "
                    "sample_size=-1)"
                )
            return Opened(stream, rejects, cleanup=cleanup)

        return open_


def _later(current: Any, value: Any) -> Any:
    """The later of two cursor values: numbers by value, anything else (ISO timestamps,
    ids as text) by its text."""
    if value is None:
        return current
    if current is None:
        return value
    if isinstance(value, int | float) and isinstance(current, int | float):
        return max(current, value)
    return max(str(current), str(value))
