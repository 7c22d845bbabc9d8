"""The one place that opens a DuckDB connection for everyone else.

The connection comes configured: extensions from the PyPI layout (no downloads), and,
for an S3 lake, a temporary S3 secret built from the one `S3Settings`.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from lake import extensions
from lake.config import LakeSettings


def connection_config(
    memory_limit: str | None = None, threads: int | None = None
) -> dict[str, str | bool | int | float | list[str]]:
    config: dict[str, str | bool | int | float | list[str]] = {
        "extension_directory": str(extensions.install()),
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": True,
    }
    if memory_limit:
        config["memory_limit"] = memory_limit
    if threads:
        config["threads"] = threads
    return config


def connect(
    settings: LakeSettings | None = None,
    database: str | Path = ":memory:",
    read_only: bool = False,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that can read and write the lake (local or S3)."""
    con = duckdb.connect(
        str(database), read_only=read_only, config=connection_config(memory_limit, threads)
    )
    con.execute("SET enable_progress_bar = false")  # a library draws no bars on stderr
    if settings is not None and settings.s3 is not None:
        con.execute(settings.s3.duckdb_secret_sql())
    return con


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
