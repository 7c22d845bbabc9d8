"""Serving: publish marts to a DuckDB file readers open while the next build runs.

The build writes `build.duckdb` (a DuckDB writer locks its file). Publishing copies the
marts into a new file and renames it over `serving.duckdb` in one atomic step: a reader
that has the old file open keeps reading it; the next reader opens the new one.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from lake.duck import quote_ident, quote_str
from pipeline.config import Project
from pipeline.errors import StageFailed
from pipeline.gates import mart_tables


def publish(project: Project, run_id: str | None = None, force: bool = False) -> list[str]:
    """Publish the built marts. By hand (`lakehouse publish`), the mart gate runs first and
    nothing is published unless it passes; `force` skips it (the run pipeline gates right
    before publishing)."""
    if not force and run_id is None:
        from pipeline.gates import check_marts

        check_marts(project).raise_for_failures()
    tables = mart_tables(project)
    if not tables:
        raise StageFailed("publish", f"no marts in {project.build_db}: run `lakehouse build`")
    schema = project.spec.warehouse.marts_schema
    tmp = project.serving_db.with_name(f".{project.serving_db.name}.{uuid.uuid4().hex}.tmp")
    con = duckdb.connect(str(tmp))
    try:
        con.execute(f"ATTACH {quote_str(str(project.build_db))} AS build (READ_ONLY)")
        for table in tables:
            con.execute(
                f"CREATE TABLE main.{quote_ident(table)} AS "
                f"SELECT * FROM build.{quote_ident(schema)}.{quote_ident(table)}"
            )
        con.execute(
            "CREATE TABLE main._lakehouse_publication AS SELECT ? AS run_id, "
            "?::TIMESTAMPTZ AS published_at, ? AS marts",
            [run_id, datetime.now(UTC).isoformat(), tables],
        )
        con.execute("DETACH build")
        con.execute("CHECKPOINT")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, project.serving_db)
    return tables


def serve_folder(folder: Path, port: int) -> None:
    """Serve a static site (dbt docs, Data Docs) on 127.0.0.1 until Ctrl-C."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    with (
        ThreadingHTTPServer(("127.0.0.1", port), handler) as server,
        contextlib.suppress(KeyboardInterrupt),
    ):
        server.serve_forever()


def connect_serving(project: Project) -> duckdb.DuckDBPyConnection:
    """The analyst's view: published marts (read-only) plus `raw.<source>.<table>` (the
    lake's raw tables, read-only)."""
    con = project.lake.connect(lake_read_only=True)
    if project.serving_db.exists():
        con.execute(f"ATTACH {quote_str(str(project.serving_db))} AS serving (READ_ONLY)")
        con.execute("USE serving")
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
    return con


def query(project: Project, sql: str) -> tuple[list[str], list[tuple]]:
    con = connect_serving(project)
    try:
        cur = con.execute(sql)
        columns = [d[0] for d in (cur.description or [])]
        return columns, cur.fetchall()
    finally:
        con.close()
