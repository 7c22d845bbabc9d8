"""`lakehouse`: a thin command line over the library; each command is one call."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from pipeline.cli_cdc import cdc
from pipeline.cli_common import exit_for, fail_cleanly, print_table, project_from, run_progress
from pipeline.cli_demo import demo, example_api, generate
from pipeline.cli_lake import maintain, quarantine
from pipeline.cli_operate import schedule, sources, status
from pipeline.cli_project import dbt_sources, init
from pipeline.cli_stream import collect, stream
from pipeline.errors import StageFailed

wait_option = click.option(
    "--wait", "wait_s", type=float, default=0, show_default=True, metavar="SECONDS",
    help="If another run holds the lake, wait this long for it (then exit 75, naming it).",
)  # fmt: skip


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    "-p",
    type=click.Path(),
    default=None,
    help="lakehouse.yml (or its folder); default: found from the current folder.",
)
@click.option("--verbose", "-v", is_flag=True, help="Show progress even when not on a terminal.")
@click.pass_context
def main(ctx: click.Context, project: str | None, verbose: bool) -> None:
    """lakehouse: land raw data, transform it with dbt, gate it with GX, serve marts.

    \b
    Example:
      lakehouse run            # ingest -> raw gate -> dbt build -> mart gate -> publish
    """
    ctx.ensure_object(dict)
    ctx.obj["project"] = project
    ctx.obj["verbose"] = verbose
    interactive = sys.stderr.isatty() and not os.environ.get("CI")
    logging.basicConfig(
        level=logging.INFO if (verbose or interactive) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    from lake.redact import RedactingFilter

    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    for noisy in ("great_expectations", "botocore", "urllib3", "pypdf"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


@main.command()
@click.argument("only", nargs=-1)
@click.pass_context
@fail_cleanly
def ingest(ctx: click.Context, only: tuple[str, ...]) -> None:
    """Land new source data as raw Parquet batches in the lake.

    ONLY limits it to sources or tables (`shop` or `shop.orders`).

    \b
    Example:
      lakehouse ingest shop.orders
    """
    from pipeline.run import run_pipeline

    with run_progress(ctx) as progress:
        record = run_pipeline(project_from(ctx), stages=("ingest",), only=list(only) or None,
                              progress=progress)  # fmt: skip
    _print_ingest(record)
    exit_for(record)


def _print_ingest(record: Any) -> None:
    stage = record.stage("ingest")
    if not stage:
        return
    for name, t in stage.details["tables"].items():
        extra = f", {t['quarantined']:,} quarantined" if t["quarantined"] else ""
        click.echo(f"  {name:<28} {t['batches']:>3} new batches {t['rows']:>12,} rows{extra}")


@main.command()
@click.argument("gate", type=click.Choice(["raw", "marts"]), required=False)
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="raw: check every batch, not only those that have not passed yet.",
)
@click.option(
    "--full",
    is_flag=True,
    help="Run every dbt data test over every row (a build's tests check what it changed).",
)
@wait_option
@click.pass_context
@fail_cleanly
def check(ctx: click.Context, gate: str | None, everything: bool, full: bool,
          wait_s: float) -> None:  # fmt: skip
    """Run a quality gate by hand: `raw` (batches not yet passed) or `marts` (the build);
    or, with --full, every dbt data test over all the data (weekly on the schedule).

    \b
    Example:
      lakehouse check raw --all
      lakehouse check --full
    """
    from pipeline.gates import check_marts, check_raw
    from pipeline.serve import build_snapshot

    project = project_from(ctx)
    if full:
        from lake import Holder
        from pipeline.run import new_run_id
        from pipeline.transform import test_everything

        quiet = not (ctx.obj.get("verbose") or sys.stdout.isatty())
        with project.lake.run_lock(Holder(f"check-{new_run_id()}"), wait_s):
            tested = test_everything(project, quiet=quiet)
        if not tested.ok:
            raise StageFailed("check", "dbt: " + "; ".join(tested.failures))
        click.echo(f"every data test passed over all rows: {tested.tests_passed} tests")
        if gate is None:
            return
    if gate is None:
        raise click.UsageError("name a gate (raw or marts), or pass --full")
    if gate == "raw":
        result = check_raw(project, everything)
    else:
        result = check_marts(project, build_snapshot(project))
    for r in result.results:
        mark = "ok  " if r.success else ("FAIL" if r.severity == "critical" else "warn")
        click.echo(f"  {mark} {r.describe()}")
    if result.docs:
        click.echo(f"Data Docs: {result.docs}")
    result.raise_for_failures()
    click.echo(f"{gate} gate passed: {len(result.results)} expectations")


@main.group()
def expectations() -> None:
    """Work with the quality gates' suites (expectations/suites/<gate>/<name>.yml).

    \b
    Example:
      lakehouse expectations suggest shop.orders
    """


@expectations.command()
@click.argument("target")
@click.option("--force", is_flag=True, help="Replace an existing suite.")
@click.option("--print", "show", is_flag=True, help="Print the suggestion; write nothing.")
@click.pass_context
@fail_cleanly
def suggest(ctx: click.Context, target: str, force: bool, show: bool) -> None:
    """Profile TARGET (a raw `source.table`, or a mart) and write a starting suite.

    \b
    Example:
      lakehouse expectations suggest vendor.reviews
      lakehouse expectations suggest fct_orders --force
      lakehouse expectations suggest shop.orders --print
    """
    from pipeline.gates import suggest_suite

    path, n, text = suggest_suite(project_from(ctx.find_root()), target, force, write=not show)
    if show:
        click.echo(text, nl=False)
        return
    click.echo(f"wrote {n} expectations to {path}: review it before the next run")


@main.command()
@click.option("--select", "-s", default=None, help="dbt node selection.")
@click.option("--exclude", default=None, help="dbt nodes to leave out.")
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from scratch.")
@click.option("--vars", "dbt_vars", default=None, help="dbt variables, as YAML.")
@click.option("--target", "-t", default=None, help="The profiles.yml target.")
@wait_option
@click.pass_context
@fail_cleanly
def build(ctx: click.Context, select: str | None, exclude: str | None, full_refresh: bool,
          dbt_vars: str | None, target: str | None, wait_s: float) -> None:  # fmt: skip
    """Run `dbt build` (models and tests) against the lake; dbt's log streams with -v or
    on a terminal. Holds the lake's run lock.

    \b
    Example:
      lakehouse build --select +fct_orders
      lakehouse -v build --full-refresh --select fct_orders
    """
    from lake import Holder
    from pipeline.run import new_run_id
    from pipeline.transform import build as dbt_build

    extra = ["--full-refresh"] if full_refresh else []
    extra += ["--vars", dbt_vars] if dbt_vars else []
    extra += ["--target", target] if target else []
    project = project_from(ctx)
    quiet = not (ctx.obj.get("verbose") or sys.stdout.isatty())
    with project.lake.run_lock(Holder(f"build-{new_run_id()}"), wait_s):
        result = dbt_build(project, select=select, exclude=exclude, extra=extra, quiet=quiet)
    if not result.ok:
        raise StageFailed("build", "dbt: " + "; ".join(result.failures))
    click.echo(f"dbt build passed: {result.models} models, {result.tests_passed} tests")


@main.command()
@click.option("--serve", is_flag=True, help="Then serve the docs, Data Docs and the report.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Where --serve listens (0.0.0.0 in a container).")  # fmt: skip
@click.option("--port", default=8080, show_default=True)
@click.pass_context
@fail_cleanly
def docs(ctx: click.Context, serve: bool, host: str, port: int) -> None:
    """Build dbt's documentation as one page that opens from disk, and say where it is;
    with --serve, serve it with the Data Docs of both gates and the report.

    \b
    Example:
      lakehouse docs --serve
    """
    from pipeline.serve import docs_index, serve_folder
    from pipeline.transform import docs_site

    project = project_from(ctx)
    page = docs_site(project)
    click.echo(f"dbt docs: {page} (one file: opens from disk)")
    if serve:
        index = docs_index(project)
        click.echo(f"serving {index.parent} on http://{host}:{port}/ (Ctrl-C stops)")
        serve_folder(index.parent, port, host)


@main.command()
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write it (default: <warehouse>/report.html).",
)
@click.option("--runs", type=int, default=None, help="How many of the latest runs to show.")
@click.pass_context
@fail_cleanly
def report(ctx: click.Context, out: str | None, runs: int | None) -> None:
    """Write one HTML file (every asset inline, opens from disk): the last runs and their
    timings, rows per table, quality, freshness, and the project's charts
    (`report.charts` in lakehouse.yml).

    \b
    Example:
      lakehouse report -o /tmp/report.html
    """
    from pathlib import Path

    from pipeline.report import write_report

    path = write_report(project_from(ctx), Path(out) if out else None, runs)
    click.echo(f"report: {path}")


@main.command()
@click.option("--force", is_flag=True, help="Publish without the mart gate (said loudly).")
@click.option("--rollback", is_flag=True, help="Publish again the set before the current one.")
@click.pass_context
@fail_cleanly
def publish(ctx: click.Context, force: bool, rollback: bool) -> None:
    """Gate the built marts, then publish them: every mart at once, in one lake commit.

    \b
    Example:
      lakehouse publish
      lakehouse publish --rollback     # back to the set published before
    """
    from pipeline import serve

    project = project_from(ctx)
    if rollback:
        undone, now = serve.rollback(project)
        click.echo(f"rolled back run {undone.run_id}: {len(now.marts)} marts of run "
                   f"{now.run_id} (snapshot {now.build_snapshot}) are published again")  # fmt: skip
        return
    if force:
        click.echo("WARNING: publishing WITHOUT the mart gate (--force)", err=True)
    done = serve.publish(project, force=force)
    click.echo(f"published {len(done.marts)} marts (lake snapshot {done.build_snapshot}) "
               f"as {project.lake.settings.url} marts.*")  # fmt: skip


@main.command()
@click.argument("only", nargs=-1)
@click.option("--select", "-s", "selected", multiple=True, metavar="SOURCE[.TABLE]",
              help="Only this source (or table) and the models downstream of it.")  # fmt: skip
@wait_option
@click.pass_context
@fail_cleanly
def run(ctx: click.Context, only: tuple[str, ...], selected: tuple[str, ...],
        wait_s: float) -> None:  # fmt: skip
    """Run the whole pipeline: ingest, raw gate, dbt build, mart gate, publish.

    ONLY (or --select) limits it to sources or tables and the models downstream of them.
    One run at a time per lake; a run with nothing new skips build, gate and publish.

    \b
    Example:
      lakehouse run
      lakehouse run --select iot   # iot, and the models built from it
      lakehouse run --wait 600     # behind a run that is still going
    """
    from pipeline.run import run_pipeline
    from pipeline.summary import print_summary

    project = project_from(ctx)
    with run_progress(ctx) as progress:
        record = run_pipeline(project, only=[*only, *selected] or None, wait_s=wait_s,
                              progress=progress)  # fmt: skip
    print_summary(project, record)
    exit_for(record)


@main.command()
@click.argument("sql")
@click.option("--limit", default=50, show_default=True, help="Rows to print.")
@click.option("--at", "at", metavar="RUN_ID", help="Read the marts that run published.")
@click.pass_context
@fail_cleanly
def query(ctx: click.Context, sql: str, limit: int, at: str | None) -> None:
    """Query the published marts (and raw.<source>.<table>) with DuckDB SQL.

    \b
    Example:
      lakehouse query "select order_date, sum(net_amount) from fct_orders group by 1"
      lakehouse query --at 20261124T101500-1a2b3c "select count(*) from fct_orders"
    """
    import duckdb

    from pipeline.serve import query as run_query

    try:
        columns, rows = run_query(project_from(ctx), sql, at=at)
    except duckdb.Error as exc:
        raise StageFailed("query", str(exc).splitlines()[0]) from None
    print_table(columns, rows, limit)


main.add_command(quarantine)
main.add_command(maintain)
for command in (
    sources,
    status,
    schedule,
    cdc,
    collect,
    stream,
    generate,
    demo,
    example_api,
    init,
    dbt_sources,
):
    main.add_command(command)


if __name__ == "__main__":
    main()
