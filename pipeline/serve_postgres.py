"""Serving for BI tools: the published marts copied into a PostgreSQL database.

Metabase, Superset, Tableau, Power BI and psql speak PostgreSQL, so when `serving.postgres`
is configured every publication is also written there, in three steps:

1. Load (`pipeline.serve_postgres_load`). Each mart whose published snapshot differs from
   the one PostgreSQL holds is copied (DuckDB's postgres extension, binary COPY) into a
   private schema `_lakehouse_load_<token>`, then keyed (a primary key on the columns dbt
   tests as `unique` + `not_null`), indexed as its dbt `meta.serving.indexes` asks,
   vacuumed and analyzed, and commented (dbt's descriptions). Nothing a reader sees yet.
2. Swap, in one short transaction: a new schema gets the loaded tables plus the unchanged
   ones, moved (`ALTER TABLE ... SET SCHEMA` is a catalog update, no copy); the schema
   readers use is renamed away and the new one renamed to it; read rights are granted;
   `_lakehouse_serving.published` records each mart's snapshot. A query sees the set
   before or the set after, never a mix: the swap takes its locks before any name
   changes, and a statement that waits for it resolves its tables again afterwards.
3. Drop the previous schema, in its own transaction (a reader still holding it only
   delays that; a later publish retries).

A mart no build touched is never copied again, and a changed mart that PostgreSQL holds
at an earlier snapshot, with the same columns, keys and docs, is not copied either: the
rows it lost and gained since (`lake.diff`, read from its change feed) are loaded, then
applied inside the swap transaction, before its locks (deleted by primary key, inserted):
each lost key must be served once, and no gained key yet, else the mart is copied whole
(a table edited by hand where the change touches it). Readers keep reading the old rows
meanwhile (MVCC) and see the new ones at the swap's commit, with the rest of the set. So
publishing after a small change costs the rows that changed. A mart whose changes are more
than `DELTA_MAX_SHARE` of its rows, that has no primary key, or whose old snapshot has
expired is copied whole. A PostgreSQL advisory lock serialises publishers (a run and
`lakehouse stream`). A failed load leaves the served set as it was; the next publish
catches up, because what to copy is decided from what PostgreSQL holds.

Readers log in as a role (`reader_role`) that may only `SELECT` from the served schema.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from lake.redact import redact
from pipeline.serve_postgres_delta import Drifted, apply_delta, plan_deltas, vacuum_changed
from pipeline.serve_postgres_load import load
from pipeline.serving_docs import MartDocs, layout_hash

log = logging.getLogger("lakehouse.serve_postgres")

STATE_SCHEMA = "_lakehouse_serving"
LOAD_PREFIX = "_lakehouse_load_"
OLD_PREFIX = "_lakehouse_old_"
ADVISORY_KEY = 0x1A4E_0001
"""`pg_advisory_lock` key held by a publisher for the whole publish."""
SWAP_LOCK_TIMEOUT = "500ms"
"""Below PostgreSQL's deadlock_timeout (1 s): a swap waiting on a reader's transaction gives
up and retries first, so the reader is never the one a deadlock aborts."""
SWAP_ATTEMPTS = 20


class PostgresServing(BaseModel):
    """`serving.postgres` in lakehouse.yml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        "",
        description="libpq URL or DSN of the serving database (the publisher's login: it "
        "creates schemas and the reader role). Empty: no PostgreSQL serving.",
    )
    schema_name: str = Field(
        "marts", alias="schema", description="The schema BI tools read the marts from."
    )
    reader_role: str | None = Field(
        "lakehouse_bi", description="A login role that may only read the served schema."
    )
    reader_password: str | None = Field(
        None, description="The reader role's password (a secret: use ${VAR}). None: no login."
    )
    reader_work_mem: str | None = Field(
        "64MB",
        description="work_mem of the reader role's sessions: a dashboard's GROUP BY over a "
        "large mart sorts and hashes in memory instead of spilling (PostgreSQL's default 4MB).",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.url.strip())


@dataclass
class ServedSet:
    schema: str
    copied: list[str] = field(default_factory=list)
    """Marts copied by this publish (their snapshot changed)."""
    updated: dict[str, int] = field(default_factory=dict)
    """Marts brought up to date in place: each with the rows deleted + inserted."""
    kept: list[str] = field(default_factory=list)
    """Marts moved across unchanged."""
    dropped: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    """Each step's seconds: diff, load (from the start), swap, vacuum."""
    mart_seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    """mart -> seconds of its own parts: diff, copy (whole), rows (its changed rows
    loaded), index (keys, indexes, vacuum, comments), apply_delete and apply_insert (in
    the swap)."""


def _pg(url: str) -> Any:
    import psycopg

    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise ConnectionError(f"serving database: {redact(str(exc)).strip()}") from None


def served_snapshots(url: str) -> dict[str, int]:
    """What the serving database holds: mart -> the lake snapshot it was copied at."""
    with contextlib.closing(_pg(url)) as pg:
        return _served(pg)


def _served(pg: Any) -> dict[str, int]:
    return {m: s for m, (s, _) in _served_layouts(pg).items()}


def _served_layouts(pg: Any) -> dict[str, tuple[int, str | None]]:
    """mart -> (snapshot, layout) of what the serving database holds."""
    row = pg.execute("SELECT to_regclass(%s)", [f"{STATE_SCHEMA}.published"]).fetchone()
    if row is None or row[0] is None:
        return {}
    has_layout = pg.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = %s "
        "AND table_name = 'published' AND column_name = 'layout'", [STATE_SCHEMA]
    ).fetchone()  # fmt: skip
    layout = "layout" if has_layout else "NULL"
    rows = pg.execute(f"SELECT mart, snapshot, {layout} FROM {STATE_SCHEMA}.published")
    return {m: (s, lay) for m, s, lay in rows.fetchall()}


def _setup(pg: Any, cfg: PostgresServing) -> None:
    pg.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")
    pg.execute(
        f"""CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.published (
            mart text PRIMARY KEY, snapshot bigint NOT NULL, run_id text,
            published_at timestamptz NOT NULL DEFAULT now())"""
    )
    pg.execute(f"ALTER TABLE {STATE_SCHEMA}.published ADD COLUMN IF NOT EXISTS layout text")
    pg.execute(f"REVOKE ALL ON SCHEMA {STATE_SCHEMA} FROM PUBLIC")
    if cfg.reader_role:
        from psycopg import sql

        role = sql.Identifier(cfg.reader_role)
        exists = pg.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [cfg.reader_role])
        if exists.fetchone() is None:
            pg.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(role))
        if cfg.reader_password:
            pg.execute(
                sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                    role, sql.Literal(cfg.reader_password)
                )
            )
        # nothing to write to: not the public schema, not temporary tables
        database = sql.Identifier(pg.info.dbname)
        pg.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM {}").format(role))
        pg.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, role))
        pg.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role))
        if cfg.reader_work_mem:
            pg.execute(sql.SQL("ALTER ROLE {} SET work_mem = {}").format(
                role, sql.Literal(cfg.reader_work_mem)))  # fmt: skip


def _tables(pg: Any, schema: str) -> set[str]:
    rows = pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema]).fetchall()
    return {r[0] for r in rows}


def _swap(
    pg: Any, cfg: PostgresServing, load_schema: str, snapshots: dict[str, int],
    copied: set[str], run_id: str | None, token: str,
    deltas: dict[str, tuple[tuple[str, ...], int]], layouts: dict[str, str],
    timings: dict[str, dict[str, float]],
) -> tuple[list[str], list[str], str | None, dict[str, int]]:  # fmt: skip
    """One transaction: the marts of `deltas` (mart -> (key, the rows it lost)) get their
    changes, then the new set becomes `cfg.schema_name`. Returns (kept, dropped, the
    previous schema's new name, rows changed per mart of `deltas`)."""
    from psycopg import sql

    target, new, old = cfg.schema_name, f"_lakehouse_new_{token}", f"{OLD_PREFIX}{token}"
    with pg.transaction():
        pg.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
        # changed rows first, under row locks only: readers go on reading the old rows
        changed: dict[str, int] = {}
        for mart, (key, rows) in sorted(deltas.items()):
            parts: dict[str, float] = {}
            changed[mart] = apply_delta(pg, target, load_schema, mart, key, rows, parts)
            timings.setdefault(mart, {}).update({f"apply_{k}": v for k, v in parts.items()})
        current = _tables(pg, target)
        kept = sorted(m for m in snapshots if m not in copied and m in current)
        dropped = sorted(current - set(snapshots))
        # every lock first, in one order: then no reader sees a half-renamed set
        locked = [sql.Identifier(target, m) for m in sorted(current)]
        if locked:
            pg.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                sql.SQL(", ").join(locked)))  # fmt: skip
        pg.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(new)))
        for mart in kept:
            pg.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                sql.Identifier(target, mart), sql.Identifier(new)))  # fmt: skip
        for mart in sorted(copied):
            pg.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                sql.Identifier(load_schema, mart), sql.Identifier(new)))  # fmt: skip
        had_schema = pg.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", [target]
        ).fetchone()
        if had_schema:
            pg.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                sql.Identifier(target), sql.Identifier(old)))  # fmt: skip
        pg.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
            sql.Identifier(new), sql.Identifier(target)))  # fmt: skip
        pg.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(sql.Identifier(target)))
        if cfg.reader_role:
            role = sql.Identifier(cfg.reader_role)
            pg.execute(
                sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(target), role)
            )
            pg.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
                sql.Identifier(target), role))  # fmt: skip
        pg.execute(f"DELETE FROM {STATE_SCHEMA}.published")
        with pg.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {STATE_SCHEMA}.published (mart, snapshot, run_id, layout) "
                "VALUES (%s, %s, %s, %s)",
                [(m, s, run_id, layouts.get(m)) for m, s in sorted(snapshots.items())],
            )
    return kept, dropped, old if had_schema else None, changed


def _drop_leftovers(pg: Any) -> None:
    """Schemas of earlier publishes: emptied load schemas and replaced sets."""
    from psycopg import errors, sql

    rows = pg.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s OR nspname LIKE %s",
        [LOAD_PREFIX.replace("_", r"\_") + "%", OLD_PREFIX.replace("_", r"\_") + "%"],
    ).fetchall()
    for (schema,) in rows:
        try:
            with pg.transaction():
                pg.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
                pg.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        except errors.LockNotAvailable:
            log.info("serving: %s is still read; dropped on a later publish", schema)


@contextlib.contextmanager
def _publisher_lock(pg: Any) -> Iterator[None]:
    pg.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_KEY])
    try:
        yield
    finally:
        pg.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_KEY])


def publish_to_postgres(
    con: duckdb.DuckDBPyConnection, cfg: PostgresServing, snapshots: dict[str, int],
    docs: dict[str, MartDocs], run_id: str | None = None,
) -> ServedSet:  # fmt: skip
    """Serve `snapshots` (mart -> lake snapshot; `con` has the lake attached as `lake`)
    from `cfg.schema_name`: bring each mart PostgreSQL lacks at that snapshot up to date
    (its changed rows, or a whole copy), then swap."""
    from psycopg import errors

    result = ServedSet(schema=cfg.schema_name)
    t0 = time.monotonic()
    with contextlib.closing(_pg(cfg.url)) as pg, _publisher_lock(pg):
        _setup(pg, cfg)
        _drop_leftovers(pg)
        served = _served_layouts(pg)
        present = _tables(pg, cfg.schema_name)
        layouts = {m: layout_hash(con, m, s, docs.get(m, MartDocs())) for m, s in snapshots.items()}
        stale = {m for m, s in snapshots.items() if served.get(m) != (s, layouts[m])
                 or m not in present}  # fmt: skip
        t_diff = time.monotonic()
        keys = {m: docs.get(m, MartDocs()).primary_key for m in snapshots}
        diffs = plan_deltas(con, {
            m: (served[m][0], snapshots[m]) for m in stale
            if m in present and m in served and served[m][1] == layouts[m] and keys[m]
            and docs.get(m, MartDocs()).by_delta
        }, keys, result.mart_seconds)  # fmt: skip
        copied = stale - set(diffs)
        result.seconds["diff"] = round(time.monotonic() - t_diff, 3)
        token = secrets.token_hex(4)
        load_schema = f"{LOAD_PREFIX}{token}"
        try:
            load(con, pg, cfg.url, load_schema, {m: snapshots[m] for m in copied}, docs, diffs,
                  timings=result.mart_seconds)  # fmt: skip
            deltas = {m: (docs[m].primary_key, d.lost_rows) for m, d in diffs.items()}
        finally:
            for diff in diffs.values():
                diff.drop(con)
        result.seconds["load"] = round(time.monotonic() - t0, 3)
        t1 = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                kept, dropped, _old, changed = _swap(pg, cfg, load_schema, snapshots, copied,
                                                     run_id, token, deltas, layouts,
                                                     result.mart_seconds)  # fmt: skip
                break
            except Drifted as exc:  # what it held was not its snapshot: copy it whole
                log.warning("serving: %s", exc)
                deltas.pop(exc.mart)
                copied.add(exc.mart)
                load(con, pg, cfg.url, load_schema, {exc.mart: snapshots[exc.mart]}, docs,
                      create_schema=False)  # fmt: skip
            except (errors.LockNotAvailable, errors.DeadlockDetected):
                if attempt >= SWAP_ATTEMPTS:
                    raise
                log.warning("serving: readers hold the served marts; swap retried (%d)", attempt)
                time.sleep(min(0.1 * attempt, 1.0))
        result.seconds["swap"] = round(time.monotonic() - t1, 3)
        t2 = time.monotonic()
        vacuum_changed(pg, cfg.schema_name, changed, {m: d.rows_now for m, d in diffs.items()})
        result.seconds["vacuum"] = round(time.monotonic() - t2, 3)
        _drop_leftovers(pg)
    result.copied, result.updated = sorted(copied), changed
    result.kept = [m for m in kept if m not in changed]
    result.dropped = dropped
    return result
