"""What every `lakehouse` command shares: one-line errors, the project, tables on a terminal."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from functools import wraps
from typing import Any

import click

from expectations import GateFailed, SuiteError
from ingest import IngestError
from lake import LakeError
from lake.redact import redact
from pipeline import config as cfg
from pipeline.errors import ConfigError, StageFailed

TRACEBACK_ENV = "LAKEHOUSE_TRACEBACK"
USER_ERRORS = (ConfigError, StageFailed, GateFailed, SuiteError, IngestError, LakeError)


def fail_cleanly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """User mistakes and failed stages end with one line and exit 1 (75 when another run
    holds the lake), not a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            click.echo(f"error: {redact(str(exc))}", err=True)
            sys.exit(getattr(exc, "exit_code", 1))
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # a fault (store or server down) or a bug: one line too
            if os.environ.get(TRACEBACK_ENV):
                raise
            first = (str(exc).strip() or "").splitlines()[:1]
            click.echo(f"error: {type(exc).__name__}: {redact(''.join(first))} "
                       f"(the traceback: {TRACEBACK_ENV}=1)", err=True)  # fmt: skip
            sys.exit(1)

    return wrapper


@contextlib.contextmanager
def run_progress(ctx: click.Context) -> Iterator[Any]:
    """On a terminal (or with -v): a progress bar of the tables ingested (rich) and dbt's
    log as it runs; elsewhere None (a log file gets the summary only)."""
    if not (sys.stderr.isatty() or ctx.find_root().obj.get("verbose")):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from pipeline.run import Progress as RunProgress

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   console=Console(stderr=True), transient=True)  # fmt: skip
    task: list[Any] = []
    landed = [0]

    def on_table(report: Any, total: int) -> None:
        if not task:
            task.append(bar.add_task("ingest", total=total))
        landed[0] += report.rows
        bar.update(task[0], advance=1, description=f"ingest: {landed[0]:,} rows landed, "
                   f"{report.source}.{report.table} done")  # fmt: skip

    with bar:
        yield RunProgress(on_table=on_table, dbt_log=True)


def project_from(ctx: click.Context) -> cfg.Project:
    return cfg.load_project(ctx.obj.get("project"))


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], limit: int = 50) -> None:
    shown = [["NULL" if v is None else str(v) for v in row] for row in rows[:limit]]
    widths = [max([len(c)] + [len(r[i]) for r in shown]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    click.echo("  ".join("-" * w for w in widths))
    for r in shown:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    more = f" (showing {limit})" if len(rows) > limit else ""
    click.echo(f"({len(rows)} row{'s' if len(rows) != 1 else ''}{more})")


def exit_for(record: Any) -> None:
    """A run that went on without a failed source says so in its exit code (2); one that
    set batches aside, 3."""
    if record.failed_sources:
        click.echo(f"error: partial run: {', '.join(record.failed_sources)} could not be "
                   "ingested; the other sources went on (see SKIPPED)", err=True)  # fmt: skip
        sys.exit(2)
    if record.quarantined:
        click.echo(f"error: {len(record.quarantined)} batch(es) quarantined: see "
                   "`lakehouse quarantine list`", err=True)  # fmt: skip
        sys.exit(3)
