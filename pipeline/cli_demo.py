"""The example shop's commands: generate it, serve its vendor API, run the demo (and keep
it running live)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from pipeline import config as cfg
from pipeline.cli_common import exit_for, fail_cleanly, run_progress
from pipeline.errors import ConfigError

scale_option = click.option(
    "--scale", type=float, default=1.0, show_default=True,
    help="Size of the example shop (1 = 20,000 orders).",
)  # fmt: skip


@click.command()
@scale_option
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--out",
    type=click.Path(),
    default="data/sources",
    show_default=True,
    help="Folder to write into.",
)
@fail_cleanly
def generate(scale: float, seed: int, out: str) -> None:
    """Generate the example shop's source files (deterministic for a seed).

    \b
    Example:
      lakehouse generate --scale 10 --out data/sources
    """
    from examples.shop.shop_data import generate as gen

    counts = gen(Path(out), scale=scale, seed=seed)
    for table, n in counts.items():
        click.echo(f"{table:<12} {n:>12,} rows")


@click.command()
@scale_option
@click.option("--live", is_flag=True, help="Then keep the shop running in real time.")
@click.option("--seconds", type=float, help="--live: stop after this long (default: Ctrl-C).")
@click.pass_context
@fail_cleanly
def demo(ctx: click.Context, scale: float, live: bool, seconds: float | None) -> None:
    """Generate the example shop and run the whole pipeline on it. With --live, then
    start `lakehouse collect` and `lakehouse stream` (and a local MQTT broker), post the
    shop's clicks and reviews (a fraud ring every 10 s), publish its sensors' readings,
    and print the events/s, the lake's lag and the latest fraud flag.

    \b
    Example:
      lakehouse demo --scale 2
      lakehouse demo --live
    """
    from examples.shop.shop_api import ShopApi
    from examples.shop.shop_data import generate as gen
    from pipeline.run import run_pipeline
    from pipeline.summary import print_summary

    base = cfg.find_project_file(ctx.obj.get("project")).parent
    sources = base / "data" / "sources"
    counts = gen(sources, scale=scale)
    click.echo(
        f"generated the example shop (scale {scale}): "
        + ", ".join(f"{k} {v:,}" for k, v in counts.items())
    )
    if os.environ.get("SHOP_DB_KIND") == "postgres":  # docker-compose: the shop runs on PG
        from examples.shop.shop_data import load_into_postgres

        load_into_postgres(sources / "shop.sqlite", os.environ["SHOP_DB_URL"])
        click.echo("loaded the shop database into PostgreSQL")
    with ShopApi(sources / "vendor" / "reviews.json") as api:
        # the vendor source's base_url and token, for this project only
        project = cfg.load_project(ctx.obj.get("project"), env={**os.environ, **api.env()})
        with run_progress(ctx) as progress:
            record = run_pipeline(project, progress=progress)
    print_summary(project, record)
    if record.status != "failed":
        from pipeline.report import write_report

        click.echo(f"\nthe report (runs, quality, freshness, the shop's charts; opens from "
                   f"disk): {write_report(project)}")  # fmt: skip
    if live:
        from examples.shop.live_demo import run_live

        run_live(project, seconds, scale)
    exit_for(record)


@click.command("example-api")
@click.option("--port", default=8765, show_default=True, help="Port on 127.0.0.1.")
@click.pass_context
@fail_cleanly
def example_api(ctx: click.Context, port: int) -> None:
    """Serve the example shop's review vendor API (for `lakehouse run` by hand; `lakehouse
    demo` runs it itself). Stops with Ctrl-C.

    \b
    Example:
      lakehouse example-api &  lakehouse run
    """
    from examples.shop.shop_api import serve_until_interrupted

    base = cfg.find_project_file(ctx.obj.get("project")).parent
    reviews = base / "data" / "sources" / "vendor" / "reviews.json"
    if not reviews.exists():
        raise ConfigError(f"{reviews} not found: run `lakehouse demo` (or generate) first")
    click.echo(f"serving {reviews} at http://127.0.0.1:{port}/v1/reviews (Ctrl-C stops)")
    serve_until_interrupted(reviews, port)
