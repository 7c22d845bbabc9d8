"""The real-time commands, each a service until stopped: `lakehouse collect` (the event
collector and MQTT subscriptions) and `lakehouse stream` (the real-time marts)."""

from __future__ import annotations

import logging
import signal
import threading

import click

from pipeline.cli_common import fail_cleanly, project_from


@click.command()
@click.option("--host", help="Interface to listen on (default: collector.host, 127.0.0.1).")
@click.option("--port", type=int, help="TCP port (default: collector.port, 8766; 0: any).")
@click.pass_context
@fail_cleanly
def collect(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Receive events over HTTP for `kind: events` sources, subscribe to `kind: mqtt`
    sources, and land both in micro-batches (every `collector.max_batch_s`) until SIGTERM
    or Ctrl-C; then what was accepted is landed before it exits.

    \b
    Example:
      lakehouse collect &
      curl -X POST localhost:8766/v1/web/clicks -d '{"session_id": "s1", "url": "/"}'
    """
    from ingest.stream.server import serve

    project = project_from(ctx)
    settings = project.spec.collector
    changes = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if changes:
        settings = settings.model_copy(update=changes)
    streams = [
        f"{s.name}/{t.name}"
        for s in project.spec.sources
        if s.kind in ("events", "mqtt")
        for t in s.tables
    ]
    if not streams:
        raise click.ClickException("no `kind: events` or `kind: mqtt` source in lakehouse.yml")
    logging.getLogger().setLevel(logging.INFO)  # a service's log

    def ready(url: str) -> None:
        click.echo(f"collecting on {url}: {', '.join(streams)}", err=True)

    serve(project.lake, project.spec.sources, settings, project.collector_log_dir, ready)


@click.command()
@click.option("--poll-s", default=0.5, show_default=True, help="How often to look for new batches.")
@click.option("--no-gate", is_flag=True, help="Publish without the mart gate (not for production).")
@click.pass_context
@fail_cleanly
def stream(ctx: click.Context, poll_s: float, no_gate: bool) -> None:
    """Keep the marts tagged `real_time` in dbt fresh: whenever a raw table upstream of
    them gets a batch (events from `lakehouse collect`, CDC, an ingest), rebuild them,
    gate them and publish them, until SIGTERM or Ctrl-C. The other marts stay as the
    last `lakehouse run` published them. Each cycle prints one line.

    \b
    Example:
      lakehouse collect &
      lakehouse stream
    """
    from pipeline.stream import Cycle
    from pipeline.stream import stream as keep_fresh

    project = project_from(ctx)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    logging.getLogger().setLevel(logging.INFO)

    def show(cycle: Cycle) -> None:
        steps = ", ".join(f"{k} {v:.1f}s" for k, v in cycle.seconds.items())
        outcome = (f"published at snapshot {cycle.snapshot}" if cycle.published
                   else "NOT published: " + "; ".join(cycle.failures)[:300])  # fmt: skip
        click.echo(f"{cycle.cycle_id}: {cycle.batches} new batches -> "
                   f"{', '.join(cycle.marts)} {outcome} ({steps})", err=True)  # fmt: skip

    keep_fresh(project, stop, poll_s=poll_s, gate=not no_gate, on_cycle=show)
