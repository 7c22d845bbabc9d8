"""Small helpers the integration tests share."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import duckdb

from lake import TableState, layout
from pipeline.config import Project


def raw_rows(project: Project, source: str, table: str) -> int:
    """Rows a reader sees in a raw table (0 when it does not exist yet)."""
    con = project.lake.connect()
    try:
        row = con.execute(f"SELECT count(*) FROM {layout.raw_table(source, table)}").fetchone()
        return int(row[0]) if row else 0
    except duckdb.CatalogException:
        return 0
    finally:
        con.close()


def table_state(project: Project, source: str, table: str) -> TableState:
    """A raw table's state, from the lake's batch log."""
    found = project.lake.states(source, table)
    return found[0] if found else TableState(source, table)


def all_states_of(project: Project) -> list[TableState]:
    return project.lake.states()


def lake_sql(project: Project, sql: str, params: list | None = None) -> list[tuple]:
    con = project.lake.connect()
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def serving_scalar(project: Project, sql: str, at: str | None = None) -> object:
    """One value of a query on the published marts, as `lakehouse query` runs it."""
    from pipeline.serve import query

    _, rows = query(project, sql, at=at)
    return rows[0][0] if rows else None


def published_marts(project: Project) -> tuple[str | None, dict[str, tuple]]:
    """What readers see now: the publishing run, and per mart its row count and a
    checksum of every column (comparing two of these compares the published data)."""
    from pipeline.serve import connect_serving

    con = connect_serving(project)
    try:
        marts = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
        sums = {m: con.execute(f"SELECT count(*), sum(hash(COLUMNS(*))) FROM {m}").fetchone()
                for m in marts}  # fmt: skip
    finally:
        con.close()
    return published_run(project), {m: tuple(v or ()) for m, v in sums.items()}


def published_run(project: Project) -> str | None:
    """The run whose marts are published now (None before the first publish)."""
    from pipeline.serve import current

    found = current(project)
    return found.run_id if found else None


def cli(
    project: Project, *args: str, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a separate process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--project", str(project.path), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def s3_env_of(project: Project) -> dict[str, str]:
    s3 = project.lake.settings.s3
    return {} if s3 is None else {**s3.dbt_env(), "LAKEHOUSE_LAKE_URL": project.lake.settings.url}


def shop_db(project: Project, sql: str, params: tuple = ()) -> None:
    """Change the project's copy of the shop's SQLite database, as the application would."""
    import sqlite3

    con = sqlite3.connect(project.base_dir / "sources" / "shop.sqlite")
    con.execute(sql, params)
    con.commit()
    con.close()


def shop_rows(project: Project, table: str) -> int:
    import sqlite3

    con = sqlite3.connect(project.base_dir / "sources" / "shop.sqlite")
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    con.close()
    return int(row[0])


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def assert_no_leftovers(project: Project, source: str, table: str) -> None:
    """`lakehouse maintain` leaves exactly the files the table references: no orphan of a
    killed writer, and on S3 no multipart upload it never completed."""
    from lake import S3Storage
    from lake.maintain import maintain

    con = project.lake.connect()
    try:
        maintain(con, orphan_age_hours=0, storage=project.lake.storage)
        referenced = sorted(
            r[0] for r in con.execute(
                "SELECT data_file FROM ducklake_list_files('lake', ?, schema => ?)",
                [table, source],
            ).fetchall()
        )  # fmt: skip
    finally:
        con.close()
    prefix = f"{layout.TABLES_DIR}/{source}/{table}"
    files = sorted(project.lake.uri(k) for k in project.lake.storage.list(prefix))
    assert files == referenced
    storage = project.lake.storage
    if isinstance(storage, S3Storage):
        assert storage.incomplete_uploads() == []
