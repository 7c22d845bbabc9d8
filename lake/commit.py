"""Changing a raw table: land a batch, set one aside, bring one back. Each is one DuckLake
transaction holding the rows and their record in the batch log (see `lake.batches`).

Landing writes the batch's Parquet file first, outside any transaction (a multi-minute
COPY must not hold the catalog), then adds that file to the table in a short
transaction, retried when another writer commits first. A writer killed before the
commit leaves an orphan file that no table references; `lakehouse maintain` deletes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from lake import layout
from lake.batches import (
    BatchRecord,
    TableState,
    _event,
    earliest,
    in_transaction,
    key_match,
    latest,
    table_columns,
    transaction,
)
from lake.duck import INLINE_ROWS, quote_ident, quote_str
from lake.errors import LakeError
from lake.failpoints import failpoint
from lake.storage import Storage

LINEAGE_COLUMNS = ("_load_id", "_source_file", "_ingested_at")

log = logging.getLogger("lakehouse.lake")


class SchemaConflict(LakeError):
    """A batch's columns cannot be applied to its table (a type DuckLake cannot alter)."""


@dataclass
class NewBatch:
    """A batch whose Parquet file is written (data plus lineage columns), ready to commit."""

    load_id: str
    source: str
    table: str
    input_key: str
    fingerprint: str
    description: str
    file_key: str
    rows: int
    columns: list[list[str]]
    input: dict[str, Any] = field(default_factory=dict)
    rejects: str | None = None
    """A relation (SQL) of this connection holding the rows that did not parse."""
    rejected: int = 0
    watermark_from: str | None = None
    watermark: str | None = None
    disposition: str = "append"
    primary_key: list[str] = field(default_factory=list)
    divert: str | None = None
    """Set to land the whole batch in quarantine instead, with this reason."""
    schema_change: str | None = None
    run_id: str | None = None
    sniffed: bool = False
    """Its types were guessed from its values (CSV, JSON): an empty one creates no table."""


def new_load_id(fingerprint: str, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S%f}-{hashlib.sha1(fingerprint.encode()).hexdigest()[:8]}"


def describe_change(old: list[list[str]] | None, new: list[list[str]]) -> str:
    """`added x BIGINT; dropped y; z INTEGER -> VARCHAR`, or `initial`."""
    if old is None:
        return "initial"
    before = {c: t for c, t in old}
    after = {c: t for c, t in new}
    parts = [f"added {c} {t}" for c, t in after.items() if c not in before]
    parts += [f"dropped {c}" for c in before if c not in after]
    parts += [f"{c} {before[c]} -> {t}" for c, t in after.items() if c in before and before[c] != t]
    return "; ".join(parts) or "column order"


def _evolve(
    con: duckdb.DuckDBPyConnection, relation: str, columns: list[list[str]], rows: str = ""
) -> dict[str, str]:
    """Make the table take the batch's columns: add the new ones, widen types that grew
    (INTEGER -> BIGINT). A column that became text turns the table's column into text (a
    rewrite of the table: DuckLake only widens in place); a batch column narrower than
    the table's is cast on the way in. Returns the batch columns to cast; a change that
    would lose values raises `SchemaConflict`. `rows`: the batch's rows (a relation), to
    check that its values fit where the types alone do not say."""
    existing = {c: t for c, t in table_columns(con, relation) or []}
    cast: dict[str, str] = {}
    for name, kind in columns:
        column = quote_ident(name)
        before = existing.get(name)
        if before is None:
            con.execute(f"ALTER TABLE lake.{relation} ADD COLUMN {column} {kind}")
        elif before == kind or before == "VARCHAR":
            if before != kind:
                cast[name] = before  # anything lands as text without loss
        elif kind == "VARCHAR":
            con.execute(
                f"CREATE OR REPLACE TABLE lake.{relation} AS SELECT * REPLACE "
                f"({column}::VARCHAR AS {column}) FROM lake.{relation}"
            )
        else:
            try:
                con.execute(f"ALTER TABLE lake.{relation} ALTER COLUMN {column} TYPE {kind}")
            except duckdb.Error:
                if not _fits(con, kind, before, column, rows):
                    raise SchemaConflict(
                        f"column {name} is {kind} in this batch but {before} in the table"
                    ) from None
                cast[name] = before
    return cast


def _fits(con: duckdb.DuckDBPyConnection, kind: str, target: str, column: str, rows: str) -> bool:
    """Whether the batch's values of type `kind` convert to `target` without loss: by the
    types (INTEGER into DOUBLE), or by the values (whole numbers below 2^53 into DOUBLE)."""
    if kind in ("BIGINT", "HUGEINT", "UBIGINT") and target == "DOUBLE" and rows:
        row = con.execute(
            f"SELECT count(*) FROM {rows} WHERE {column}::DOUBLE::{kind} <> {column}"
        ).fetchone()
        return row is not None and row[0] == 0
    widening = {
        "TINYINT": {"SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "DOUBLE", "FLOAT"},
        "SMALLINT": {"INTEGER", "BIGINT", "HUGEINT", "DOUBLE", "FLOAT"},
        "INTEGER": {"BIGINT", "HUGEINT", "DOUBLE"},
        "BIGINT": {"HUGEINT"},
        "FLOAT": {"DOUBLE"},
        "DATE": {"TIMESTAMP", "TIMESTAMP WITH TIME ZONE"},
        "TIMESTAMP": {"TIMESTAMP WITH TIME ZONE"},
    }
    return target in widening.get(kind, set())


def _apply_disposition(
    con: duckdb.DuckDBPyConnection, raw: str, load_id: str, disposition: str, keys: list[str]
) -> None:
    """After a batch's rows are in the table: `replace` keeps only them; `merge` drops the
    older versions of the keys it carries; `append` keeps everything."""
    this = quote_str(load_id)
    if disposition == "replace":
        con.execute(f"DELETE FROM {raw} WHERE _load_id <> {this}")
    elif disposition == "merge":
        con.execute(
            f"DELETE FROM {raw} AS old WHERE old._load_id <> {this} AND EXISTS ("
            f"SELECT 1 FROM {raw} AS new WHERE new._load_id = {this} "
            f"AND {key_match(keys, 'new', 'old')})"
        )


def commit_batch(
    con: duckdb.DuckDBPyConnection, storage: Storage, state: TableState, new: NewBatch
) -> BatchRecord:
    """Commit a written batch: its rows, rejects and log row in one transaction."""
    uri = storage.uri(new.file_key)
    raw = layout.raw_table(new.source, new.table)
    relation = raw.removeprefix("lake.")
    inline = new.rows <= INLINE_ROWS and not new.divert
    qtable = layout.quarantine_table(new.source, new.table, new.load_id) if new.divert else None
    record = BatchRecord(
        new.load_id, new.source, new.table, new.input_key, new.fingerprint, new.description,
        new.rows, new.rejected, "", new.input, new.watermark_from, new.watermark,
        new.columns or None, new.schema_change, new.disposition,
        "quarantined" if new.divert else "landed", new.divert, qtable, new.run_id,
    )  # fmt: skip

    copied: list[bool] = []

    @in_transaction
    def commit() -> None:
        copied.clear()
        with transaction(con):
            if qtable is not None:
                q = f"{layout.QUARANTINE}.{qtable}"
                con.execute(
                    f"CREATE TABLE lake.{q} AS SELECT * FROM read_parquet({quote_str(uri)}) LIMIT 0"
                )
                con.execute(
                    f"CALL ducklake_add_data_files('lake', {quote_str(qtable)}, {quote_str(uri)}, "
                    f"schema => {quote_str(layout.QUARANTINE)})"
                )
            else:
                copied.append(_land_rows(con, raw, relation, uri, inline, new))
            if new.rejects is not None:
                con.execute(
                    f"INSERT INTO lake.{layout.REJECTED} SELECT ?, ?, ?, source_file, line, "
                    "column_name, error_type, raw_record, reason, now() FROM "
                    f"({new.rejects})",
                    [new.source, new.table, new.load_id],
                )
            record.committed_at = datetime.now(UTC).isoformat(sep=" ")
            con.execute(
                f"INSERT INTO lake.{layout.BATCHES} VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [new.load_id, new.source, new.table, new.input_key, new.fingerprint,
                 new.description, json.dumps(new.input, default=str), new.rows, new.rejected,
                 new.watermark_from, new.watermark,
                 json.dumps(new.columns) if new.columns else None, new.schema_change,
                 new.disposition, record.status, new.divert, qtable, new.run_id,
                 record.committed_at],
            )  # fmt: skip
            failpoint("before_commit")

    commit()
    failpoint("after_commit")
    if any(copied):  # its rows were copied in (inlined, or cast): the file is an orphan
        try:
            storage.delete(new.file_key)
        except Exception:  # (committed: nothing may fail now; `lakehouse maintain` sweeps it)
            log.warning("%s.%s: could not delete %s yet", new.source, new.table, new.file_key)
    state.batches.append(record)
    if record.in_raw_zone and new.watermark is not None:
        state.watermark = new.watermark
    return record


def _land_rows(con: duckdb.DuckDBPyConnection, raw: str, relation: str, uri: str,
               inline: bool, new: NewBatch) -> bool:  # fmt: skip
    """Put the batch's rows in its table; True when they were copied (small batches are
    inlined, batches cast to the table's types rewritten), False when the batch's file
    itself became the table's."""
    cast: dict[str, str] = {}
    # DuckLake 1.5.5 inlines a struct's text wrongly (`'` came back as ''): a table with
    # structs keeps its rows in Parquet files, however few
    structs = any("STRUCT(" in t or "MAP(" in t for _, t in new.columns)
    if table_columns(con, relation) is None:  # (the schema check grows with the catalog)
        if new.rows == 0 and new.sniffed:
            return True  # an empty first file: its guessed types would fix the table's
        con.execute(f"CREATE SCHEMA IF NOT EXISTS lake.{quote_ident(new.source)}")
        con.execute(f"CREATE TABLE {raw} AS SELECT * FROM read_parquet({quote_str(uri)}) LIMIT 0")
    elif new.rows == 0:
        return True  # an empty batch: recorded, nothing to add
    else:
        cast = _evolve(con, relation, [[c, t] for c, t in _file_columns(con, uri)],
                       f"read_parquet({quote_str(uri)})")  # fmt: skip
        if structs and cast:  # (refused for a table this transaction created or altered)
            with contextlib.suppress(duckdb.NotImplementedException):
                con.execute(
                    "CALL lake.set_option('data_inlining_row_limit', 0, "
                    f"schema => {quote_str(new.source)}, table_name => {quote_str(new.table)})"
                )
    inline = inline and not structs
    if inline or cast:  # rows copied in (small, or cast to the table's types)
        replace = ", ".join(f"{quote_ident(c)}::{t} AS {quote_ident(c)}" for c, t in cast.items())
        con.execute(
            f"INSERT INTO {raw} BY NAME SELECT * {f'REPLACE ({replace})' if replace else ''} "
            f"FROM read_parquet({quote_str(uri)})"
        )
    else:
        con.execute(
            f"CALL ducklake_add_data_files('lake', {quote_str(new.table)}, {quote_str(uri)}, "
            f"schema => {quote_str(new.source)}, allow_missing => true)"
        )
    _apply_disposition(con, raw, new.load_id, new.disposition, new.primary_key)
    return inline or bool(cast)


def _file_columns(con: duckdb.DuckDBPyConnection, uri: str) -> list[tuple[str, str]]:
    rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet({quote_str(uri)})").fetchall()
    return [(r[0], r[1]) for r in rows]


def quarantine_batch(
    con: duckdb.DuckDBPyConnection, state: TableState, load_id: str, reason: str,
    primary_key: list[str], run_id: str | None = None,
) -> BatchRecord:  # fmt: skip
    """Take a landed batch out of its raw table, in one transaction: its rows go to their
    own quarantine table, the rows it had replaced come back (`replace`, `merge`), and the
    log records why; the table's watermark goes back to where the batch started.
    Hold the table's lock (`lake.locks.table_lock`)."""
    record = state.batch(load_id)
    if not record.in_raw_zone:
        return record
    raw = layout.raw_table(record.source, record.table)
    qtable = layout.quarantine_table(record.source, record.table, load_id)
    this = quote_str(load_id)

    @in_transaction
    def commit() -> None:
        with transaction(con):
            con.execute(
                f"CREATE TABLE lake.{layout.QUARANTINE}.{qtable} AS "
                f"SELECT * FROM {raw} WHERE _load_id = {this}"
            )
            if record.disposition in ("replace", "merge") and record.snapshot_id is not None:
                _restore_replaced(con, raw, record, primary_key)
            con.execute(f"DELETE FROM {raw} WHERE _load_id = {this}")
            for column in _added_by(state, record):  # its schema change goes with it
                con.execute(f"ALTER TABLE {raw} DROP COLUMN {quote_ident(column)}")
            _event(con, record, "quarantined", reason, qtable, run_id)
            failpoint("quarantine_before_commit")

    commit()
    record.status, record.reason, record.quarantine_table = "quarantined", reason, qtable
    state.watermark = earliest(state.watermark, record.watermark_from)
    return record


def _added_by(state: TableState, record: BatchRecord) -> list[str]:
    """Columns only this batch brought: no other batch in the raw table has them."""
    others: set[str] = set(LINEAGE_COLUMNS)
    for b in state.batches:
        if b.in_raw_zone and b.load_id != record.load_id:
            others |= {c for c, _ in b.columns or []}
    return [c for c, _ in record.columns or [] if c not in others]


def _restore_replaced(con: duckdb.DuckDBPyConnection, raw: str, record: BatchRecord,
                      keys: list[str]) -> None:  # fmt: skip
    """Put back the rows the batch's commit deleted, where the batch's rows are still the
    current ones (a later batch may have replaced them already)."""
    snap = int(record.snapshot_id or 0)
    this = quote_str(record.load_id)
    columns = ", ".join(
        quote_ident(c) for c, _ in table_columns(con, raw.removeprefix("lake.")) or []
    )
    changes = (
        f"ducklake_table_changes('lake', {quote_str(record.source)}, "
        f"{quote_str(record.table)}, {snap}, {snap})"
    )
    if record.disposition == "replace":
        still_current = f"EXISTS (SELECT 1 FROM {raw} WHERE _load_id = {this})"
    else:
        still_current = (
            f"EXISTS (SELECT 1 FROM {raw} AS new WHERE new._load_id = {this} "
            f"AND {key_match(keys, 'new', 'old')})"
        )
    con.execute(
        f"INSERT INTO {raw} ({columns}) SELECT {columns} FROM {changes} AS old "
        f"WHERE change_type IN ('delete', 'update_preimage') AND {still_current}"
    )


def release_batch(
    con: duckdb.DuckDBPyConnection, state: TableState, load_id: str,
    primary_key: list[str], run_id: str | None = None,
) -> BatchRecord:  # fmt: skip
    """Admit a quarantined batch into its raw table, in one transaction (new columns are
    added first). The caller re-checks it beforehand. Hold the table's lock."""
    record = state.batch(load_id)
    if record.in_raw_zone or not record.quarantine_table:
        raise LakeError(f"{record.source}.{record.table} batch {load_id} is not quarantined")
    raw = layout.raw_table(record.source, record.table)
    q = f"lake.{layout.QUARANTINE}.{record.quarantine_table}"
    columns = table_columns(con, q.removeprefix("lake.")) or []

    @in_transaction
    def commit() -> None:
        with transaction(con):
            relation = raw.removeprefix("lake.")
            if table_columns(con, relation) is None:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS lake.{quote_ident(record.source)}")
                con.execute(f"CREATE TABLE {raw} AS SELECT * FROM {q} LIMIT 0")
            else:
                _evolve(con, relation, columns)
            con.execute(f"INSERT INTO {raw} BY NAME SELECT * FROM {q}")
            _apply_disposition(con, raw, load_id, record.disposition, primary_key)
            con.execute(f"DROP TABLE {q}")
            _event(con, record, "released", run_id=run_id)

    commit()
    record.status, record.reason, record.quarantine_table, record.gate = (
        "landed",
        None,
        None,
        "passed",
    )
    state.watermark = latest(state.watermark, record.watermark)
    return record
