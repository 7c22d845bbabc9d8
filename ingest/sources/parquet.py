"""Parquet files, landed as they are (plus lineage columns)."""

from __future__ import annotations

import duckdb

from ingest.sources.base import Opened
from ingest.sources.files import FileSource
from lake.duck import quote_str


class ParquetSource(FileSource):
    kind = "parquet"

    def open_file(self, con: duckdb.DuckDBPyConnection, filename: str) -> Opened:
        return Opened(
            con.sql(f"SELECT * FROM read_parquet({quote_str(filename)}, hive_partitioning=false)")
        )
