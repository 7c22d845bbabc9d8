"""Write one extract's stream as one Parquet file, with lineage columns, and keep its
rejects for the commit (see `lake.commit`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from ingest.sources import Opened
from lake import LINEAGE_COLUMNS
from lake.duck import quote_ident, quote_str

__all__ = ["LINEAGE_COLUMNS", "Written", "write_batch"]


@dataclass
class Written:
    rows: int
    rejected: int = 0
    rejects_table: str | None = None
    """A temporary table of this connection with the rows that did not parse."""


def write_batch(
    con: duckdb.DuckDBPyConnection,
    opened: Opened,
    data_uri: str,
    load_id: str,
    description: str,
) -> Written:
    """COPY the stream to `data_uri` (DuckDB's streaming Parquet writer: bounded memory),
    and its bad records into a temporary table.

    Two second chances, each a re-read of the same input: `fallback` when the stream
    fails on malformed input, `widen` when values did not fit the inferred types."""
    lineage = (
        f"{quote_str(load_id)} AS _load_id, {quote_str(description)} AS _source_file, "
        f"{quote_str(datetime.now(UTC).isoformat())}::TIMESTAMPTZ AS _ingested_at"
    )
    used = [opened]
    try:
        try:
            rows = _copy(con, opened, data_uri, load_id, lineage)
        except duckdb.InvalidInputException:
            if opened.fallback is None:
                raise
            opened = opened.fallback()
            used.append(opened)
            rows = _copy(con, opened, data_uri, load_id, lineage)
        widened = opened.widen() if opened.widen else None
        if widened is not None:
            opened = widened
            used.append(opened)
            rows = _copy(con, opened, data_uri, load_id, lineage)
        rejected, table = _keep_rejects(con, opened)
    finally:
        for item in used:
            item.cleanup()
    return Written(rows=rows, rejected=rejected, rejects_table=table)


def _copy(
    con: duckdb.DuckDBPyConnection, opened: Opened, data_uri: str, load_id: str, lineage: str
) -> int:
    view = f"_batch_{uuid.uuid4().hex[:12]}"
    if isinstance(opened.stream, pa.RecordBatchReader):
        con.register(view, opened.stream)
    else:
        opened.stream.create_view(view, replace=True)
    try:
        # Parquet has no 128-bit integer: DuckDB would write HUGEINT as DOUBLE and lose
        # digits (-9007199254740993 landed as ...992.0); DECIMAL(38, 0) keeps them all
        wide = [c for c, t in con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {view})")
                .fetchall() if t in ("HUGEINT", "UHUGEINT")]  # fmt: skip
        exact = (" REPLACE (" + ", ".join(f"{quote_ident(c)}::DECIMAL(38, 0) AS {quote_ident(c)}"
                                          for c in wide) + ")") if wide else ""  # fmt: skip
        row = con.execute(
            f"COPY (SELECT *{exact}, {lineage} FROM {view}) TO {quote_str(data_uri)} "
            "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880, "
            f"KV_METADATA {{lakehouse_load_id: {quote_str(load_id)}}})"
        ).fetchone()
    finally:
        con.execute(f"DROP VIEW IF EXISTS {view}")
    return int(row[0]) if row else 0


def _keep_rejects(con: duckdb.DuckDBPyConnection, opened: Opened) -> tuple[int, str | None]:
    rejects = opened.rejects()
    if rejects is None or rejects.limit(1).fetchone() is None:
        return 0, None
    table = f"_rejects_{uuid.uuid4().hex[:12]}"
    view = f"{table}_src"
    rejects.create_view(view, replace=True)
    try:
        con.execute(
            f"CREATE TEMP TABLE {table} AS SELECT source_file::VARCHAR AS source_file, "
            "line::BIGINT AS line, column_name::VARCHAR AS column_name, "
            "error_type::VARCHAR AS error_type, raw_record::VARCHAR AS raw_record, "
            f"reason::VARCHAR AS reason FROM {view}"
        )
    finally:
        con.execute(f"DROP VIEW IF EXISTS {view}")
    # records, not errors: a line with two bad values is one quarantined row
    row = con.execute(
        f"SELECT count(DISTINCT (source_file, line)) + count(*) FILTER (WHERE line IS NULL) "
        f"FROM {table}"
    ).fetchone()
    return (int(row[0]) if row else 0), table
