"""`lakehouse collect`: the event collector and MQTT subscriptions, until stopped."""

from __future__ import annotations

import logging

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
