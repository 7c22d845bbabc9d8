"""Write one extract's stream as one Parquet object, with lineage columns and rejects."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from ingest.sources import Opened
from lake import Written
from lake.duck import quote_str

LINEAGE_COLUMNS = ("_load_id", "_source_file", "_ingested_at")


def write_batch(
    con: duckdb.DuckDBPyConnection,
    opened: Opened,
    data_uri: str,
    quarantine_uri: str,
    load_id: str,
    description: str,
) -> Written:
    """COPY the stream to `data_uri` (DuckDB's streaming Parquet writer: bounded memory),
    then its bad records to `quarantine_uri`.

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
        quarantined = _copy_rejects(con, opened, quarantine_uri, lineage)
    finally:
        for item in used:
            item.cleanup()
    return Written(rows=rows, quarantined=quarantined)


def _copy(
    con: duckdb.DuckDBPyConnection, opened: Opened, data_uri: str, load_id: str, lineage: str
) -> int:
    view = f"_batch_{uuid.uuid4().hex[:12]}"
    if isinstance(opened.stream, pa.RecordBatchReader):
        con.register(view, opened.stream)
    else:
        opened.stream.create_view(view, replace=True)
    try:
        row = con.execute(
            f"COPY (SELECT *, {lineage} FROM {view}) TO {quote_str(data_uri)} "
            "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880, "
            f"KV_METADATA {{lakehouse_load_id: {quote_str(load_id)}}})"
        ).fetchone()
    finally:
        con.execute(f"DROP VIEW IF EXISTS {view}")
    return int(row[0]) if row else 0


def _copy_rejects(
    con: duckdb.DuckDBPyConnection, opened: Opened, quarantine_uri: str, lineage: str
) -> int:
    rejects = opened.rejects()
    if rejects is None or rejects.limit(1).fetchone() is None:
        return 0
    view = f"_rejects_{uuid.uuid4().hex[:12]}"
    rejects.create_view(view, replace=True)
    try:
        row = con.execute(
            f"COPY (SELECT *, {lineage} FROM {view}) TO {quote_str(quarantine_uri)} "
            "(FORMAT parquet, COMPRESSION zstd)"
        ).fetchone()
    finally:
        con.execute(f"DROP VIEW IF EXISTS {view}")
    return int(row[0]) if row else 0
