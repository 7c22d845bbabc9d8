"""The PostgreSQL side of change data capture: a logical replication slot read with the
wal2json plugin over ordinary SQL (`pg_logical_slot_peek_changes`, then
`pg_replication_slot_advance` once the lake has committed), and consistent snapshots.

A peek never consumes: until the slot is advanced, the same changes are decoded again,
so a crash between the lake's commit and the advance re-reads changes the lake already
holds, and the lake's own position (stored with the rows) says which to skip.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg

from ingest.errors import IngestError

log = logging.getLogger("lakehouse.cdc")

WAL2JSON_OPTIONS = {
    "format-version": "2",
    "include-xids": "1",
    "include-timestamp": "1",
    "include-types": "1",
    "include-typmod": "1",
    "include-lsn": "1",
}


def lsn_int(text: str) -> int:
    """`16/B374D848` -> its 64-bit position (sortable; what the lake stores)."""
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def lsn_text(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


@dataclass(frozen=True)
class SlotInfo:
    name: str
    confirmed: int
    lag_bytes: int


def connect(url: str, source: str) -> psycopg.Connection:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise IngestError(source, "(cdc)", f"cannot connect: {exc}".strip()) from None


def ensure_slot(pg: psycopg.Connection, source: str, slot: str, create: bool) -> SlotInfo:
    """The slot, created (with wal2json) when missing and allowed; errors say what the
    server or the user lacks."""
    info = slot_info(pg, slot)
    if info is not None:
        return info
    if not create:
        raise IngestError(
            source,
            "(cdc)",
            f"replication slot {slot!r} does not exist "
            "(database.cdc.create_slot is false): create it with "
            f"SELECT pg_create_logical_replication_slot('{slot}', 'wal2json')",
        )
    level = pg.execute("SHOW wal_level").fetchone()
    if level is None or level[0] != "logical":
        raise IngestError(
            source,
            "(cdc)",
            "the server's wal_level is "
            f"{level[0] if level else '?'}, CDC needs wal_level = logical "
            "(postgresql.conf, then restart the server)",
        )
    try:
        pg.execute("SELECT pg_create_logical_replication_slot(%s, 'wal2json')", [slot])
    except psycopg.Error as exc:
        hint = ""
        if "wal2json" in str(exc):
            hint = ": install the wal2json plugin (Debian: postgresql-15-wal2json)"
        elif "permission" in str(exc).lower() or "must be" in str(exc).lower():
            hint = ": the user needs the REPLICATION attribute (ALTER ROLE ... REPLICATION)"
        raise IngestError(
            source, "(cdc)", f"cannot create slot {slot!r}: {str(exc).strip()}{hint}"
        ) from None
    log.info("%s: created replication slot %s", source, slot)
    created = slot_info(pg, slot)
    assert created is not None
    return created


def slot_info(pg: psycopg.Connection, slot: str) -> SlotInfo | None:
    row = pg.execute(
        "SELECT confirmed_flush_lsn::text, "
        "pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
        "FROM pg_replication_slots WHERE slot_name = %s",
        [slot],
    ).fetchone()
    if row is None:
        return None
    return SlotInfo(slot, lsn_int(row[0]), int(row[1] or 0))


def flush_position(pg: psycopg.Connection) -> int:
    row = pg.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
    assert row is not None
    return lsn_int(row[0])


def advance(pg: psycopg.Connection, slot: str, position: int) -> None:
    """Confirm everything up to `position`: the server may recycle that WAL."""
    pg.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", [slot, lsn_text(position)])


def peek(
    url: str, slot: str, upto: int, max_changes: int, tables: list[str]
) -> Iterator[tuple[int, str]]:
    """(position, wal2json message) for whole transactions committed before `upto`, about
    `max_changes` of them (a transaction is never cut), fetched through a server-side
    cursor: memory is bounded however large a transaction is."""
    options = {**WAL2JSON_OPTIONS, "add-tables": ",".join(tables)}
    args = ", ".join("%s" for _ in range(2 * len(options)))
    params: list[object] = [slot, lsn_text(upto), max_changes]
    for key, value in options.items():
        params += [key, value]
    with psycopg.connect(url, connect_timeout=10) as pg, pg.transaction():
        cursor = pg.cursor(name="lakehouse_cdc")
        cursor.itersize = 2000
        cursor.execute(
            f"SELECT lsn::text, data FROM pg_logical_slot_peek_changes(%s, %s::pg_lsn, %s, {args})",
            params,
        )
        for lsn, data in cursor:
            yield lsn_int(lsn), data


def column_types(pg: psycopg.Connection, schema: str, table: str) -> list[tuple[str, str]]:
    """The table's columns and their types as wal2json prints them (format_type)."""
    rows = pg.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        [schema, table],
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


@contextlib.contextmanager
def exported_snapshot(url: str, source: str) -> Iterator[tuple[psycopg.Connection, int]]:
    """A transaction that sees the database exactly as of a position: a temporary slot
    exports its snapshot at its consistent point, so a row committed before that
    position is in the snapshot and one committed after is in the change stream.
    Yields (connection in that transaction, position)."""
    try:
        rep = psycopg.connect(url, replication="database", autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise IngestError(
            source,
            "(cdc)",
            f"cannot open a replication connection: {exc}. "
            "The user needs the REPLICATION attribute, and pg_hba.conf a "
            "`replication` line for it",
        ) from None
    try:
        name = f"lakehouse_snap_{rep.info.backend_pid}"
        result = rep.pgconn.exec_(
            f'CREATE_REPLICATION_SLOT "{name}" TEMPORARY LOGICAL wal2json EXPORT_SNAPSHOT'.encode()
        )
        if result.status != 2:  # PGRES_TUPLES_OK
            message = (result.error_message or b"").decode(errors="replace").strip()
            raise IngestError(source, "(cdc)", f"cannot export a snapshot: {message}")
        position = lsn_int((result.get_value(0, 1) or b"").decode())
        snapshot = (result.get_value(0, 2) or b"").decode()
        with psycopg.connect(url, connect_timeout=10) as pg, pg.transaction():
            pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            pg.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            yield pg, position
    finally:
        rep.close()  # drops the temporary slot


def check_identity(pg: psycopg.Connection, source: str, table: str, schema: str,
                   remote: str) -> None:  # fmt: skip
    """Updates and deletes name their row by the table's replica identity: a table
    without one (no primary key, REPLICA IDENTITY NOTHING) would log deletes without a key."""
    row = pg.execute(
        "SELECT c.relreplident, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid "
        "AND i.indisprimary) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        [schema, remote],
    ).fetchone()
    if row is None:
        raise IngestError(source, table, f"table {schema}.{remote} not found in the database")
    identity, has_key = row
    if identity == "n" or (identity == "d" and not has_key):
        raise IngestError(source, table, f"{schema}.{remote} has no replica identity (no "
                          "primary key): its deletes would carry no key. Add a primary key, "
                          f"or ALTER TABLE {schema}.{remote} REPLICA IDENTITY FULL")  # fmt: skip
