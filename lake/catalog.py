"""The lake's own tables (`_lakehouse.*`, see `lake.layout`): created on a lake's first use,
and upgraded when a later version adds a column."""

from __future__ import annotations

import duckdb

from lake import layout
from lake.batches import in_transaction, transaction
from lake.duck import INLINE_ROWS

_bootstrapped: set[str] = set()

_DDL = [
    f"CREATE SCHEMA IF NOT EXISTS lake.{layout.META}",
    f"CREATE SCHEMA IF NOT EXISTS lake.{layout.QUARANTINE}",
    f"""CREATE TABLE IF NOT EXISTS lake.{layout.BATCHES} (
        load_id VARCHAR, source VARCHAR, table_name VARCHAR, input_key VARCHAR,
        fingerprint VARCHAR, description VARCHAR, input VARCHAR, rows BIGINT,
        rejected BIGINT, watermark_from VARCHAR, watermark VARCHAR, columns VARCHAR,
        schema_change VARCHAR, disposition VARCHAR, status VARCHAR, reason VARCHAR,
        quarantine_table VARCHAR, run_id VARCHAR, committed_at TIMESTAMPTZ)""",
    f"""CREATE TABLE IF NOT EXISTS lake.{layout.EVENTS} (
        load_id VARCHAR, source VARCHAR, table_name VARCHAR, event VARCHAR,
        reason VARCHAR, quarantine_table VARCHAR, run_id VARCHAR, event_at TIMESTAMPTZ)""",
    f"""CREATE TABLE IF NOT EXISTS lake.{layout.REJECTED} (
        source VARCHAR, table_name VARCHAR, load_id VARCHAR, source_file VARCHAR,
        line BIGINT, column_name VARCHAR, error_type VARCHAR, raw_record VARCHAR,
        reason VARCHAR, rejected_at TIMESTAMPTZ)""",
    f"""CREATE TABLE IF NOT EXISTS lake.{layout.PUBLICATIONS} (
        run_id VARCHAR, build_snapshot BIGINT, marts VARCHAR[], forced BOOLEAN,
        rollback_of VARCHAR, published_at TIMESTAMPTZ, mart_snapshots VARCHAR)""",
]


def ensure_catalog(con: duckdb.DuckDBPyConnection, catalog: str) -> None:
    """Create the lake's own tables on first use (safe when two processes race)."""
    if catalog in _bootstrapped:
        return

    @in_transaction
    def create() -> None:
        with transaction(con):
            for ddl in _DDL:
                con.execute(ddl)

    # one table's newest column, bound (listing `duckdb_tables()` would load every table's
    # details: ~0.15 s of each process's first connection)
    try:
        con.execute(f"SELECT mart_snapshots FROM lake.{layout.PUBLICATIONS} LIMIT 0")
    except duckdb.CatalogException:  # a new lake
        create()
        in_transaction(con.execute)(  # (its own commit: may meet another process's)
            f"CALL lake.set_option('data_inlining_row_limit', {INLINE_ROWS})"
        )
    except duckdb.BinderException:  # a lake made before the column
        _upgrade(con)
    _bootstrapped.add(catalog)


def _upgrade(con: duckdb.DuckDBPyConnection) -> None:
    """Columns added to the lake's own tables since a lake was created: a publication
    holding marts of several builds (`lakehouse stream`)."""

    @in_transaction
    def add() -> None:
        with transaction(con):
            con.execute(f"ALTER TABLE lake.{layout.PUBLICATIONS} "
                        "ADD COLUMN IF NOT EXISTS mart_snapshots VARCHAR")  # fmt: skip

    add()
