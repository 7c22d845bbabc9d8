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


def serving_scalar(project: Project, sql: str) -> object:
    con = duckdb.connect(str(project.serving_db), read_only=True)
    try:
        row = con.execute(sql).fetchone()
        return row[0] if row else None
    finally:
        con.close()


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
