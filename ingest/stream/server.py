"""`lakehouse collect`: the HTTP event collector (Starlette under uvicorn) and the MQTT
subscribers, around one `Collector`.

    POST /v1/<source>/<table>   JSON object, JSON array, or JSON Lines (one event a line)
    GET  /health                200 while micro-batches land, 503 while the lake refuses them
    GET  /metrics               Prometheus text: accepted, rejected, landed, pending, lag

200 `{"accepted": n}`: every event is durable (fsynced to the write-ahead log) and lands
within `max_batch_s`. 400 `{"accepted": n, "rejected": [{"index": i, "reason": ...}]}`:
the good events are accepted all the same, the refused ones kept in
`lake._lakehouse.rejected_rows` with their reason. 429 with Retry-After: the lake is behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import signal
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ingest.config import SourceConfig
from ingest.stream.collector import Collector, Overloaded, Unparsed
from ingest.stream.options import CollectorSettings
from lake import Lake

log = logging.getLogger("lakehouse.collect")


def parse_body(body: bytes) -> list[Any]:
    """A request's events: one JSON value, a JSON array of them, or JSON Lines; a line that
    is not JSON becomes an `Unparsed` event (refused, kept)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        lines = [line for line in body.splitlines() if line.strip()]
        if len(lines) <= 1:
            return [Unparsed(body.decode(errors="replace"), f"not JSON: {exc}")]
        events: list[Any] = []
        for line in lines:
            try:
                events.append(orjson.loads(line))
            except orjson.JSONDecodeError as err:
                events.append(Unparsed(line.decode(errors="replace"), f"not JSON: {err}"))
        return events
    return value if isinstance(value, list) else [value]


def build_app(
    collector: Collector,
    settings: CollectorSettings,
    lifespan: Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]],
) -> Starlette:
    limit = int(settings.max_request_mb * 1024 * 1024)
    token = f"Bearer {settings.token}".encode() if settings.token else None
    declared = ", ".join(f"{s}/{t}" for s, t in collector.streams)

    async def post(request: Request) -> Response:
        source, table = request.path_params["source"], request.path_params["table"]
        if token is not None and not hmac.compare_digest(
            request.headers.get("authorization", "").encode(), token
        ):
            return JSONResponse(
                {"error": "missing or wrong bearer token"},
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if (source, table) not in collector.streams:
            return JSONResponse(
                {"error": f"no stream {source}/{table} (declared: {declared})"}, 404
            )
        if int(request.headers.get("content-length") or 0) > limit:
            return JSONResponse(
                {
                    "error": f"body over {settings.max_request_mb:g} MB "
                    "(collector.max_request_mb): send smaller batches"
                },
                413,
            )
        try:
            collector.check_capacity()
        except Overloaded as exc:
            return JSONResponse(
                {"error": str(exc)}, 429, headers={"Retry-After": str(exc.retry_after)}
            )
        body = await request.body()
        if len(body) > limit:
            return JSONResponse({"error": "body too large"}, 413)
        if not body.strip():
            return JSONResponse({"error": "no events in the body"}, 400)
        client = request.client.host if request.client else "?"
        try:
            outcome = collector.accept(
                source, table, parse_body(body), f"POST /v1/{source}/{table} from {client}"
            )
        except OSError as exc:  # the log's disk is full or gone: nothing was acknowledged
            log.error("write-ahead log: %s", exc)
            return JSONResponse({"error": f"cannot write the log: {exc.strerror}"}, 503)
        await collector.log.durable(outcome.ticket)
        if outcome.refused:
            rejected = [{"index": i, "reason": r} for i, r in outcome.refused]
            return JSONResponse(
                {"accepted": outcome.accepted, "rejected": rejected, "quarantined": True}, 400
            )
        return Response(b'{"accepted":%d}' % outcome.accepted, media_type="application/json")

    async def health(request: Request) -> Response:
        status = collector.status()
        ok = status["last_error"] is None
        return JSONResponse(
            {"status": "ok" if ok else "lake unreachable", **status}, 200 if ok else 503
        )

    async def metrics(request: Request) -> Response:
        lines = []
        for key, value in collector.status().items():
            if isinstance(value, int | float):
                kind = "gauge" if key in ("pending", "lag_s", "last_commit_s") else "counter"
                name = f"lakehouse_collector_{key}" + ("_total" if kind == "counter" else "")
                lines += [f"# TYPE {name} {kind}", f"{name} {value}"]
        return PlainTextResponse("\n".join(lines) + "\n")

    return Starlette(
        routes=[
            Route("/v1/{source}/{table}", post, methods=["POST"]),
            Route("/health", health),
            Route("/metrics", metrics),
        ],
        lifespan=lifespan,
    )


def serve(
    lake: Lake,
    sources: list[SourceConfig],
    settings: CollectorSettings,
    log_dir: Path,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run until SIGTERM or Ctrl-C; on the way out every accepted event is landed."""
    from ingest.stream.mqtt import Subscriber

    collector = Collector(lake, sources, settings, log_dir)
    collector.open()
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    # listening now, not when uvicorn gets to it after the lifespan startup: a client that
    # reads collector.json below is queued in the backlog instead of refused
    sock.listen(2048)  # uvicorn's own default backlog
    url = f"http://{settings.host}:{sock.getsockname()[1]}"
    subscribers = [Subscriber(collector, s) for s in sources if s.kind == "mqtt"]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await collector.start()
        loop = asyncio.get_running_loop()
        for sub in subscribers:
            sub.start(loop)
        ready, tmp = log_dir / "collector.json", log_dir / "collector.json.tmp"
        tmp.write_text(json.dumps({"url": url}))
        tmp.replace(ready)  # whole or absent to whoever polls for it
        if on_ready:
            on_ready(url)
        try:
            yield
        finally:
            for sub in subscribers:
                sub.pause()  # what arrives now is not acknowledged: the broker keeps it
            await collector.stop()
            for sub in subscribers:
                sub.stop()
            (log_dir / "collector.json").unlink(missing_ok=True)

    app = build_app(collector, settings, lifespan)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        http="httptools",
        loop="uvloop",
        timeout_graceful_shutdown=30,
    )
    # uvicorn raises the stopping signal again once it has shut down (to die of it); the
    # collector has landed everything by then, so that is a clean exit, status 0
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    uvicorn.Server(config).run(sockets=[sock])
