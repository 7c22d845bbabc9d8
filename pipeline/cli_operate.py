"""`lakehouse sources`, `status` and `schedule`: watching the pipeline and running it on
its own."""

from __future__ import annotations

import logging

import click

from pipeline.cli_common import fail_cleanly, project_from


@click.command()
@click.pass_context
@fail_cleanly
def sources(ctx: click.Context) -> None:
    """List the declared sources and their tables' state: last batch, rows, watermark,
    quarantined rows.

    \b
    Example:
      lakehouse sources
    """
    from pipeline.summary import print_sources

    print_sources(project_from(ctx))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print it as JSON (for monitoring).")
@click.pass_context
@fail_cleanly
def status(ctx: click.Context, as_json: bool) -> None:
    """Show every raw table's state, the latest runs (start, duration, stale tables,
    alerts) and the published mart sets.

    \b
    Example:
      lakehouse status
      lakehouse status --json | jq '.runs[-1].monitor.freshness'
    """
    from pipeline.summary import print_status, status_json

    if as_json:
        import json

        click.echo(json.dumps(status_json(project_from(ctx)), indent=1, default=str))
        return
    print_status(project_from(ctx))


@click.command()
@click.option("--max-runs", type=int, default=None, help="Stop after this many runs.")
@click.option("--dry-run", is_flag=True, help="Print the next runs and stop.")
@click.pass_context
@fail_cleanly
def schedule(ctx: click.Context, max_runs: int | None, dry_run: bool) -> None:
    """Run the pipeline on the cron expressions of lakehouse.yml, in the foreground (for
    a container or a service unit): `schedule.default` for everything, a source's own
    `schedule` for it and its downstream models. SIGTERM stops it after the current run.

    \b
    Example:
      lakehouse schedule --dry-run
      lakehouse schedule
    """
    from datetime import UTC, datetime

    from pipeline import schedule as sched

    project = project_from(ctx)
    if dry_run:
        for at, what in sched.describe(project, datetime.now(UTC)):
            click.echo(f"{at:%Y-%m-%d %H:%M:%S %Z}  {what}")
        return
    logging.getLogger().setLevel(logging.INFO)  # a service's log: every run, every wait
    sched.run_schedule(project, max_runs=max_runs)
