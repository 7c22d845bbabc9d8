"""`lakehouse quarantine` and `lakehouse maintain`: looking after the lake itself."""

from __future__ import annotations

import click

from pipeline.cli_common import fail_cleanly, print_table, project_from


@click.group()
def quarantine() -> None:
    """Batches set aside whole (failed the raw gate, or changed schema under a
    `quarantine` policy): list them, look at one, bring one back.

    \b
    Example:
      lakehouse quarantine list
    """


@quarantine.command("list")
@click.pass_context
@fail_cleanly
def quarantine_list(ctx: click.Context) -> None:
    """Every quarantined batch with its table, rows and reason.

    \b
    Example:
      lakehouse quarantine list
    """
    from pipeline.quarantine import quarantined

    batches = quarantined(project_from(ctx.find_root()))
    if not batches:
        click.echo("no quarantined batches")
    for b in batches:
        click.echo(f"{b.load_id}  {b.source}.{b.table}  {b.rows:,} rows  {b.reason}")


@quarantine.command("show")
@click.argument("load_id")
@click.pass_context
@fail_cleanly
def quarantine_show(ctx: click.Context, load_id: str) -> None:
    """A quarantined batch: why, where it came from, and its first rows.

    \b
    Example:
      lakehouse quarantine show 20261124T101500123456-1a2b3c4d
    """
    from pipeline.quarantine import show

    batch, columns, rows = show(project_from(ctx.find_root()), load_id)
    click.echo(f"{batch.source}.{batch.table} batch {batch.load_id}: {batch.rows:,} rows")
    click.echo(f"  input : {batch.description}\n  reason: {batch.reason}")
    print_table(columns, rows)


@quarantine.command("release")
@click.argument("load_id")
@click.pass_context
@fail_cleanly
def quarantine_release(ctx: click.Context, load_id: str) -> None:
    """Re-check a quarantined batch (schema policy, raw gate) and admit it into its raw
    table, in one transaction.

    \b
    Example:
      lakehouse quarantine release 20261124T101500123456-1a2b3c4d
    """
    from pipeline.quarantine import release

    batch = release(project_from(ctx.find_root()), load_id)
    click.echo(f"released {batch.source}.{batch.table} batch {batch.load_id}: {batch.rows:,} rows")


@click.command()
@click.option("--retention-days", type=float, default=None, help="Default: lake.retention_days.")
@click.pass_context
@fail_cleanly
def maintain(ctx: click.Context, retention_days: float | None) -> None:
    """Flush inlined rows, merge small files, expire old snapshots (published sets stay
    readable) and delete files no snapshot needs, orphans of killed writers included.

    \b
    Example:
      lakehouse maintain --retention-days 7
    """
    from lake.maintain import maintain as do_maintain

    project = project_from(ctx)
    con = project.lake.connect()
    try:
        report = do_maintain(con, retention_days or project.spec.lake.retention_days,
                             storage=project.lake.storage)  # fmt: skip
    finally:
        con.close()
    click.echo(f"maintained {project.lake.settings.url}: snapshots before {report.expired_before} "
               f"expired, {report.files_deleted} old files and {report.orphans_deleted} "
               "orphans deleted")  # fmt: skip
