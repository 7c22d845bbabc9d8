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
    """COPY the stream to `data_uri` (DuckDB's streaming Parquet writer: bounded memory)."""
    try:
        return _write(con, opened, data_uri, quarantine_uri, load_id, description)
    except duckdb.InvalidInputException:
        if opened.fallback is None:
            raise
        retry = opened.fallback()
        try:
            return _write(con, retry, data_uri, quarantine_uri, load_id, description)
        finally:
            retry.cleanup()
    finally:
        opened.cleanup()


def _write(
    con: duckdb.DuckDBPyConnection,
    opened: Opened,
    data_uri: str,
    quarantine_uri: str,
    load_id: str,
    description: str,
) -> Written:
    view = f"_batch_{uuid.uuid4().hex[:12]}"
    if isinstance(opened.stream, pa.RecordBatchReader):
        con.register(view, opened.stream)
    else:
        opened.stream.create_view(view, replace=True)
    ingested_at = datetime.now(UTC).isoformat()
    lineage = (
        f"{quote_str(load_id)} AS _load_id, {quote_str(description)} AS _source_file, "
        f"{quote_str(ingested_at)}::TIMESTAMPTZ AS _ingested_at"
    )
    try:
        row = con.execute(
            f"COPY (SELECT *, {lineage} FROM {view}) TO {quote_str(data_uri)} "
            "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880, "
            f"KV_METADATA {{lakehouse_load_id: {quote_str(load_id)}}})"
        ).fetchone()
        rows = int(row[0]) if row else 0
        quarantined = 0
        rejects = opened.rejects()
        if rejects is not None:
            q = (
                con.execute(
                    f"COPY (SELECT *, {lineage} FROM rejects) TO {quote_str(quarantine_uri)} "
                    "(FORMAT parquet, COMPRESSION zstd)"
                ).fetchone()
                if _has_rows(rejects)
                else None
            )
            quarantined = int(q[0]) if q else 0
    finally:
        con.execute(f"DROP VIEW IF EXISTS {view}")
    return Written(rows=rows, quarantined=quarantined)


def _has_rows(rel: duckdb.DuckDBPyRelation) -> bool:
    return rel.limit(1).fetchone() is not None
