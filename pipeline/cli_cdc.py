"""`lakehouse cdc`: drain the change data capture slots, once or continuously."""

from __future__ import annotations

import logging
import signal
import threading

import click

from pipeline.cli_common import fail_cleanly, project_from


@click.command()
@click.argument("only", nargs=-1)
@click.option("--follow", is_flag=True, help="Keep streaming small batches until stopped.")
@click.pass_context
@fail_cleanly
def cdc(ctx: click.Context, only: tuple[str, ...], follow: bool) -> None:
    """Land the changes committed at CDC sources (tables with `cdc: true`) since the last
    drain, and stop (what `lakehouse run` does for them); ONLY limits it to sources.

    With --follow it polls every `database.cdc.poll_s` until SIGTERM or Ctrl-C: the batch
    in flight then either commits and is confirmed to the server, or is read again.

    \b
    Example:
      lakehouse cdc shop_db
      lakehouse cdc --follow
    """
    from ingest.cdc.run import run_cdc

    project = project_from(ctx)
    stop = None
    if follow:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        logging.getLogger().setLevel(logging.INFO)  # a service's log: every batch
    landed = run_cdc(project.lake, project.spec.sources, project.base_dir, list(only) or None,
                     stop, project.spec.ingest.memory_limit_mb)  # fmt: skip
    for name, changes in landed.items():
        click.echo(f"  {name:<28} {changes:>12,} changes")
