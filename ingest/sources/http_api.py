"""HTTP APIs (requests): paginated JSON, politely, incrementally, and never half-landed.

One run of a table is one extract: every page is fetched into a local JSON Lines spool
(memory bounded by one page), which DuckDB then reads and types like any JSON file. The
extract lands whole or not at all, so an incremental table's cursor only moves past
pages that landed. A transient fault (connection refused or dropped mid-body, timeout,
5xx, 429, a page that is not JSON) is retried with exponential backoff and jitter
(tenacity), honouring a `Retry-After` in seconds or as a date; when the retries run out
the table fails naming the page, lands nothing, and the next run starts again from the
same position. The stop rules follow dlt's paginators: pages end on an empty page (or a
declared total), a missing cursor or next link, never on a short page (an API may cap
its page size). A page that repeats an earlier one, a cursor or a next link seen before,
or a next link to another origin (it would carry the credentials) fails the table.
Re-running with nothing new lands nothing: a spool whose content matches the last batch
is skipped.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any
from urllib.parse import urljoin, urlsplit

import duckdb
import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from ingest.config import HttpOptions
from ingest.errors import IngestError
from ingest.sources.base import Extract, Opened, Source
from lake import TableState
from lake.duck import quote_str

TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,  # the connection dropped mid-body
    requests.exceptions.ContentDecodingError,
)


class _Transient(Exception):
    """A fault worth another try: `reason` names it, `retry_after` is the server's wish."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


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


def _retry_after(value: str | None, cap: float) -> float | None:
    """`Retry-After` in seconds or as an HTTP date, capped; None when absent or not
    understood (`soon`, `inf`), and the usual backoff applies."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
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

    def _fetch(self, session: requests.Session, url: str, params: dict[str, Any],
               throttle: _Throttle, page: int) -> tuple[requests.Response, Any]:  # fmt: skip
        """One page's response and JSON body, transient faults retried."""
        o = self.options
        if o.auth.type == "api_key" and o.auth.location == "query":
            params = {**params, (o.auth.name or "api_key"): o.auth.value}

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Transient) and exc.retry_after is not None:
                return exc.retry_after
            return o.backoff_s * 2 ** (state.attempt_number - 1) * (1 + random.random())

        retrying = Retrying(
            retry=retry_if_exception_type(_Transient), wait=wait,
            stop=stop_after_attempt(o.max_retries + 1), reraise=True, sleep=time.sleep,
        )  # fmt: skip
        where = f"{self.url} page {page}"
        try:
            for attempt in retrying:
                with attempt:
                    throttle.wait()
                    return self._fetch_once(session, url, params, where)
        except _Transient as exc:
            tries = retrying.statistics.get("attempt_number", o.max_retries + 1)
            raise self._fail(f"{exc.reason} after {tries} tries", where) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _fetch_once(
        self, session: requests.Session, url: str, params: dict[str, Any], where: str
    ) -> tuple[requests.Response, Any]:
        o = self.options
        try:
            response = session.get(url, params=params, timeout=o.timeout_s)
        except TRANSIENT_ERRORS as exc:
            raise _Transient(type(exc).__name__) from None
        status = response.status_code
        if status == 429 or status >= 500:
            wish = _retry_after(response.headers.get("Retry-After"), o.max_retry_after_s)
            raise _Transient(f"HTTP {status}", wish)
        if status >= 400:
            raise self._fail(f"HTTP {status}: {response.text[:200]}", where)
        try:
            return response, response.json()
        except ValueError:  # truncated or an HTML error page behind a 200: try again
            raise _Transient(f"a page that is not JSON ({response.text[:80]!r})") from None

    def _pages(self, session: requests.Session, state: TableState) -> Iterator[list[Any]]:
        """The records of each page, in order, until the API says there are no more."""
        p = self.table.paginate
        params: dict[str, Any] = dict(self.table.params)
        if self.table.cursor_param and state.watermark is not None:
            params[self.table.cursor_param] = state.watermark
        throttle = _Throttle(self.source.name, self.options.rate_limit_per_s)
        number, offset, url_params, url = p.start, 0, params, self.url
        seen_pages: dict[str, int] = {}  # digest of a page's records -> its page number
        seen_next: set[str] = set()  # cursors or next links followed

        for page in range(1, p.max_pages + 1):
            if p.type == "page":
                url_params = {**params, p.param: number}
            elif p.type == "offset":
                url_params = {**params, p.offset_param: offset, p.limit_param: p.limit}
            response, body = self._fetch(session, url, url_params, throttle, page)
            where = f"{self.url} page {page}"
            records = _dig(body, self.table.records_path)
            if not isinstance(records, list):
                raise self._fail(f"no list of records at {self.table.records_path!r}", where)
            if records:
                digest = hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()
                if digest in seen_pages:
                    raise self._fail(
                        f"the page repeats page {seen_pages[digest]}: the API ignores the "
                        "paging parameters or loops; nothing landed", where)  # fmt: skip
                seen_pages[digest] = page
                yield records
            total = _dig(body, p.total_path) if p.total_path else None
            if p.type == "none":
                return
            if p.type == "page":
                if not records or (isinstance(total, int) and number - p.start + 1 >= total):
                    return
                number += 1
            elif p.type == "offset":
                offset += len(records)  # what came, not the limit: an API may cap it
                if not records or (isinstance(total, int) and offset >= total):
                    return
            elif p.type == "cursor":
                token = _dig(body, p.cursor_path)
                if token is None or token == "":
                    return
                if str(token) in seen_next:
                    raise self._fail(f"the API sent cursor {token!r} again: it loops", where)
                seen_next.add(str(token))
                url_params = {**params, p.cursor_param: token}
            elif p.type == "link_header":
                # the Link header carries the full next URL, its parameters included
                link = response.links.get("next", {}).get("url", "")
                if not link:
                    return
                url, url_params = urljoin(response.url, link), {}
                if _origin(url) != _origin(self.url):
                    raise self._fail(
                        f"the next link leads to {_origin(url)}: not followed, credentials "
                        "go to the API's own origin only", where)  # fmt: skip
                if url in seen_next:
                    raise self._fail("the next link points to a page already read: it loops",
                                     where)  # fmt: skip
                seen_next.add(url)
        raise self._fail(
            f"more than {p.max_pages} pages, each new: if the API really has that many, "
            "raise paginate.max_pages"
        )

    def extracts(self, con: duckdb.DuckDBPyConnection, state: TableState) -> Iterator[Extract]:
        description = self.url  # no query string: it may hold an API key
        spool = tempfile.NamedTemporaryFile(  # noqa: SIM115
            "w", prefix="lakehouse-http-", suffix=".jsonl", delete=False
        )
        digest, count = hashlib.sha256(), 0
        newest: Any = None  # the cursor's max, as the API sends it
        try:
            with spool, self._session() as session:
                for records in self._pages(session, state):
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
        if count == 0 or fingerprint in state.fingerprints:
            os.unlink(spool.name)
            return
        meta = {"records": count, "from": state.watermark}
        watermark = state.watermark if newest is None else str(newest)
        opener = _opener(spool.name, self.table.json_max_depth)
        yield Extract(fingerprint, description, opener, meta,
                      watermark_column=self.table.cursor, watermark=watermark)  # fmt: skip


def _opener(spool: str, max_depth: int) -> Callable[[duckdb.DuckDBPyConnection], Opened]:
    def open_(con: duckdb.DuckDBPyConnection) -> Opened:
        stream = con.sql(
            f"SELECT * FROM read_json({quote_str(spool)}, format='newline_delimited', "
            f"sample_size=-1, maximum_depth={max_depth})"
        )

        def cleanup() -> None:
            if os.path.exists(spool):
                os.unlink(spool)

        return Opened(stream, cleanup=cleanup)

    return open_


def _origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{parts.hostname}:{port}"


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
