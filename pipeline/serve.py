"""Serving: publish the gated marts, and open them for readers.

dbt builds the marts as DuckLake tables in `lake._build`; the mart gate reads them at one
snapshot; publishing points the views `lake.marts.<mart>` at that snapshot in one commit
(see `lake.publish`). Readers attach the lake read-only and read `marts`: a build never
blocks them, and they see one published set or the next, never a mix.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from ingest.errors import reason
from lake import layout
from lake.duck import check_read_only, lock_reader, quote_ident, quote_str
from lake.publish import (
    Publication,
    built_marts,
    changes_since,
    current_snapshot,
    mart_at,
    publications,
    publish_marts,
    published_snapshots,
    published_stack,
)
from lake.publish import rollback as rollback_marts
from lake.redact import redact
from pipeline.config import Project
from pipeline.errors import StageFailed

if TYPE_CHECKING:
    from pipeline.serve_postgres import ServedSet


def build_snapshot(project: Project) -> int:
    """The lake's snapshot now: what the gate reads and publish publishes after a build."""
    con = project.lake.connect()
    try:
        return current_snapshot(con)
    finally:
        con.close()


def publish(
    project: Project,
    run_id: str | None = None,
    force: bool = False,
    snapshot: int | None = None,
) -> Publication:
    """Publish the marts as of `snapshot` (default: the latest build). By hand (`lakehouse
    publish`), the mart gate reads that same snapshot first and nothing is published
    unless it passes; `force` skips it. A run gates right before, at the same snapshot."""
    if snapshot is None:
        snapshot = build_snapshot(project)
    if not force and run_id is None:
        from pipeline.gates import check_marts

        check_marts(project, snapshot).raise_for_failures()
    con = project.lake.connect()
    try:
        marts = built_marts(con, snapshot)
        if not marts:
            raise StageFailed("publish", "no marts in the lake: run `lakehouse build`")
        # a mart the builds since have not touched stays at the snapshot it is published at
        in_place = published_snapshots(con)
        changed = changes_since(con, in_place, snapshot)
        snapshots = {m: snapshot if m in changed else in_place[m] for m in marts}
        publication = publish_marts(con, snapshots, run_id, forced=force)
        serve_bi(project, con, publication)
        return publication
    finally:
        con.close()


def rollback(project: Project) -> tuple[Publication, Publication]:
    con = project.lake.connect()
    try:
        undone, restored = rollback_marts(con)
        serve_bi(project, con, restored)
        return undone, restored
    except LookupError as exc:
        raise StageFailed("publish", str(exc)) from None
    finally:
        con.close()


def serve_bi(
    project: Project, con: duckdb.DuckDBPyConnection | None = None,
    publication: Publication | None = None,
) -> ServedSet | None:  # fmt: skip
    """Bring the PostgreSQL serving database (`serving.postgres`) to the current
    publication, copying only the marts whose snapshot it does not hold. A no-op when it
    is not configured or already current; so a run that had nothing new still catches up
    after a publish whose copy failed."""
    cfg = project.spec.serving.postgres
    if not cfg.enabled:
        return None
    from pipeline.serve_postgres import publish_to_postgres, served_snapshots
    from pipeline.serving_docs import mart_docs

    own = con is None
    con = project.lake.connect() if con is None else con
    try:
        if publication is None:
            stack = published_stack(publications(con))
            if not stack:
                return None
            publication = stack[-1]
        try:
            if served_snapshots(cfg.url) == publication.snapshots:
                return None
            docs = mart_docs(project.dbt_target / "manifest.json")
            return publish_to_postgres(con, cfg, publication.snapshots, docs,
                                       publication.run_id)  # fmt: skip
        except Exception as exc:
            raise StageFailed(
                "publish",
                f"serving database: {redact(reason(exc))} (the lake's marts are "
                "published; the next run or `lakehouse publish` copies them again)",
            ) from None
    finally:
        if own:
            con.close()


def history(project: Project) -> list[Publication]:
    con = project.lake.connect(lake_read_only=True)
    try:
        return publications(con)
    finally:
        con.close()


def current(project: Project) -> Publication | None:
    stack = published_stack(history(project))
    return stack[-1] if stack else None


DOCS = {
    "dbt docs: models, columns, lineage": "dbt/target/static_index.html",
    "Data Docs: the raw gate": "data_docs/raw/index.html",
    "Data Docs: the mart gate": "data_docs/marts/index.html",
    "Report: runs, quality, freshness, charts": "report.html",
}


def docs_index(project: Project) -> Path:
    """`<warehouse>/index.html`: links to whatever of DOCS has been built."""
    import html

    links = "".join(
        f'<li><a href="{path}">{html.escape(title)}</a></li>'
        for title, path in DOCS.items() if (project.warehouse_dir / path).exists()
    )  # fmt: skip
    name = html.escape(project.spec.name)
    index = project.warehouse_dir / "index.html"
    index.write_text(f"<!DOCTYPE html><meta charset=utf-8><title>{name}</title>"
                     f"<h1>{name}</h1><ul>{links}</ul>")  # fmt: skip
    return index


def serve_folder(folder: Path, port: int, host: str = "127.0.0.1") -> None:
    """Serve a static site (dbt docs, Data Docs, the report) until Ctrl-C."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    with (
        ThreadingHTTPServer((host, port), handler) as server,
        contextlib.suppress(KeyboardInterrupt),
    ):
        server.serve_forever()


def connect_serving(project: Project, at: str | None = None) -> duckdb.DuckDBPyConnection:
    """The analyst's view, read-only: the published marts (`USE`d, so `fct_orders` is
    enough) plus `raw.<source>.<table>`, and no file outside the lake. `at`: the marts a
    run published, rather than the current ones (`lakehouse query --at RUN_ID`)."""
    con = project.lake.connect(lake_read_only=True)
    con.execute("ATTACH ':memory:' AS raw")
    tables = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'lake' "
        "AND NOT starts_with(schema_name, '_') ORDER BY ALL"
    ).fetchall()
    for source, table in tables:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS raw.{quote_ident(source)}")
        con.execute(
            f"CREATE VIEW raw.{quote_ident(source)}.{quote_ident(table)} AS "
            f"SELECT * FROM lake.{quote_ident(source)}.{quote_ident(table)}"
        )
    if at is not None:
        found = [p for p in publications(con) if p.run_id == at and p.rollback_of is None]
        if not found:
            con.close()
            raise StageFailed("query", f"run {at} published nothing (see `lakehouse status`)")
        con.execute("ATTACH ':memory:' AS published")
        for mart, snapshot in found[-1].snapshots.items():
            con.execute(f"CREATE VIEW published.main.{quote_ident(mart)} AS SELECT * FROM "
                        f"{mart_at(mart, snapshot, 'lake')}")  # fmt: skip
        con.execute("USE published")
    elif con.execute(
        # literals, not parameters: binding one imports pandas (0.4 s of a CLI query)
        "SELECT count(*) FROM duckdb_schemas() WHERE database_name = 'lake' "
        f"AND schema_name = {quote_str(layout.MARTS)}"
    ).fetchone() != (0,):
        con.execute(f"USE lake.{quote_ident(layout.MARTS)}")
    lock_reader(con, project.lake.settings)
    return con


def query(project: Project, sql: str, at: str | None = None) -> tuple[list[str], list[tuple]]:
    """Run an analyst's SQL read-only: queries only, on a connection that reads the lake
    and nothing else (see `lake.duck.lock_reader`)."""
    try:
        check_read_only(sql)
    except PermissionError as exc:
        raise StageFailed("query", str(exc)) from None
    con = connect_serving(project, at)
    try:
        cur = con.execute(sql)
        columns = [d[0] for d in (cur.description or [])]
        return columns, cur.fetchall()
    finally:
        con.close()
