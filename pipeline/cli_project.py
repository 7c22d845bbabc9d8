"""`lakehouse init` and `lakehouse dbt-sources`: starting your own project."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli_common import fail_cleanly, project_from


@click.command()
@click.argument("directory", type=click.Path(file_okay=False), default=".")
@click.option("--name", help="The project's name (default: the folder's).")
@click.option("--force", is_flag=True, help="Overwrite the files init writes.")
@fail_cleanly
def init(directory: str, name: str | None, force: bool) -> None:
    """Start a project in DIRECTORY: lakehouse.yml (a CSV source per file group found under
    DIRECTORY/data, one commented example per source kind), a dbt project wired to the
    lake, expectations/, .env.example and a README.

    \b
    Example:
      lakehouse init myshop && cd myshop && lakehouse ingest && lakehouse dbt-sources
    """
    from pipeline.errors import ConfigError
    from pipeline.scaffold import init_project

    try:
        written = init_project(Path(directory), name, force)
    except FileExistsError as exc:
        raise ConfigError(str(exc)) from None
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"\nnext: cd {directory} && lakehouse ingest && lakehouse dbt-sources, then "
               "write your marts in dbt/models/marts/ and `lakehouse run`")  # fmt: skip


@click.command("dbt-sources")
@click.option("--force", is_flag=True, help="Write the files again, over your edits.")
@click.pass_context
@fail_cleanly
def dbt_sources(ctx: click.Context, force: bool) -> None:
    """Write the dbt `sources:` YAML and a `stg_<source>__<table>` model (the latest
    version per declared primary_key) for each raw table in the lake; existing files are
    kept.

    \b
    Example:
      lakehouse ingest && lakehouse dbt-sources
    """
    from pipeline.scaffold import dbt_sources as write

    written = write(project_from(ctx), force)
    for path in written:
        click.echo(f"wrote {path}")
    if not written:
        click.echo("nothing to write: every raw table has its source and staging model")
