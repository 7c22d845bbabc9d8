"""Serving for BI tools: the published marts copied into a PostgreSQL database.

Metabase, Superset, Tableau, Power BI and psql speak PostgreSQL, so when `serving.postgres`
is configured every publication is also written there, in three steps:

1. Load. Each mart whose published snapshot differs from the one PostgreSQL holds is
   copied (DuckDB's postgres extension, binary COPY) into a private schema
   `_lakehouse_load_<token>`, then keyed (a primary key on the columns dbt tests as
   `unique` + `not_null`), indexed as its dbt `meta.serving.indexes` asks, vacuumed and
   analyzed, and commented (dbt's descriptions). Nothing a reader sees yet.
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
applied inside the swap transaction, before its locks (deleted by primary key, inserted),
and the table's row count checked against the lake's. Readers keep reading the old rows
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
import json
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from lake.diff import MartDiff
from lake.duck import quote_ident, quote_str
from lake.publish import mart_at
from lake.redact import redact

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
DELTA_MAX_SHARE = 0.25
"""A mart whose rows lost + gained exceed this share of its rows is copied whole instead."""


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


@dataclass(frozen=True)
class MartDocs:
    description: str = ""
    columns: dict[str, str] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ()
    indexes: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()
    """(key columns, included columns) of each index the model asks for in its dbt
    `meta: {serving: {indexes: [{columns: [...], include: [...]}]}}`."""


def _indexes(node: dict[str, Any]) -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    meta = (node.get("config") or {}).get("meta") or node.get("meta") or {}
    wanted = (meta.get("serving") or {}).get("indexes") or []
    out = []
    for index in wanted:
        cols = index.get("columns") if isinstance(index, dict) else index
        include = index.get("include", []) if isinstance(index, dict) else []
        if cols:
            out.append((tuple([cols] if isinstance(cols, str) else cols), tuple(include)))
    return tuple(out)


def mart_docs(manifest_path: Path) -> dict[str, MartDocs]:
    """Descriptions and keys of each model, from dbt's manifest (missing: none). A primary
    key is the column a model tests as both `unique` and `not_null`, or the columns of a
    `dbt_utils.unique_combination_of_columns` test; the mart gate has checked them."""
    if not manifest_path.exists():
        return {}
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError:
        return {}
    nodes = manifest.get("nodes", {})
    tests: dict[str, dict[str, set[str]]] = {}
    combos: dict[str, tuple[str, ...]] = {}
    for node in nodes.values():
        meta = node.get("test_metadata") or {}
        model = node.get("attached_node")
        if node.get("resource_type") != "test" or not model:
            continue
        if meta.get("name") in ("unique", "not_null") and node.get("column_name"):
            tests.setdefault(model, {}).setdefault(meta["name"], set()).add(node["column_name"])
        elif "unique_combination" in (meta.get("name") or ""):
            # dbt_utils' test, or one of its kind (the shop's dbt_utils_free_unique_combination)
            kwargs = meta.get("kwargs") or {}
            cols = kwargs.get("combination_of_columns") or kwargs.get("columns") or []
            if isinstance(cols, list) and cols:
                combos.setdefault(model, tuple(cols))
    out: dict[str, MartDocs] = {}
    for uid, node in nodes.items():
        if node.get("resource_type") != "model":
            continue
        found = tests.get(uid, {})
        keys = sorted(found.get("unique", set()) & found.get("not_null", set()))
        out[node.get("alias") or node["name"]] = MartDocs(
            description=node.get("description") or "",
            columns={c: (v.get("description") or "") for c, v in node.get("columns", {}).items()},
            primary_key=(keys[0],) if keys else combos.get(uid, ()),
            indexes=_indexes(node),
        )
    return out


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


def _layout(con: duckdb.DuckDBPyConnection, mart: str, snapshot: int, d: MartDocs) -> str:
    """What a served table is made of besides its rows: columns and types, key, indexes,
    comments. A mart whose layout changed is copied whole."""
    import hashlib

    from lake.diff import columns_at

    spec = {"columns": columns_at(con, mart, snapshot), "key": d.primary_key,
            "indexes": d.indexes, "description": d.description, "comments": d.columns}  # fmt: skip
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


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


def _select_for_postgres(con: duckdb.DuckDBPyConnection, source: str) -> str:
    """The mart's columns, with the types PostgreSQL has no exact match for converted:
    HUGEINT and UBIGINT to numeric (not float), structs and maps to JSON."""
    cols = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    out = []
    for name, dtype, *_ in cols:
        q = quote_ident(name)
        if dtype in ("HUGEINT", "UHUGEINT"):
            out.append(f"{q}::DECIMAL(38, 0) AS {q}")
        elif dtype == "UBIGINT":
            out.append(f"{q}::DECIMAL(20, 0) AS {q}")
        elif dtype.startswith(("STRUCT", "MAP", "UNION")):
            out.append(f"to_json({q}) AS {q}")
        else:
            out.append(q)
    return ", ".join(out)


def _delta_tables(mart: str) -> tuple[str, str]:
    """Names of the load schema's tables of a mart's lost keys and gained rows."""
    return f"{mart[:50]}__lost", f"{mart[:50]}__gained"


def _load(
    con: duckdb.DuckDBPyConnection, pg: Any, cfg: PostgresServing, load_schema: str,
    snapshots: dict[str, int], docs: dict[str, MartDocs],
    diffs: dict[str, MartDiff] | None = None, create_schema: bool = True,
) -> None:  # fmt: skip
    """Copy the marts of `snapshots` whole into `load_schema`, and for each mart of `diffs`
    the keys of the rows it lost (`<mart>__lost`) and the rows it gained (`__gained`)."""
    from psycopg import sql

    schema = f"serving_pg.{quote_ident(load_schema)}"
    con.execute(f"ATTACH {quote_str(cfg.url)} AS serving_pg (TYPE postgres)")
    try:
        if create_schema:
            con.execute(f"CREATE SCHEMA {schema}")
        for mart, snapshot in sorted(snapshots.items()):
            source = mart_at(mart, snapshot, "lake")
            con.execute(
                f"CREATE TABLE {schema}.{quote_ident(mart)} AS "
                f"SELECT {_select_for_postgres(con, source)} FROM {source}"
            )
        for mart, diff in sorted((diffs or {}).items()):
            key = ", ".join(quote_ident(c) for c in docs[mart].primary_key)
            lost, gained = (quote_ident(t) for t in _delta_tables(mart))
            rows = _select_for_postgres(con, diff.gained)
            con.execute(f"CREATE TABLE {schema}.{lost} AS SELECT {key} FROM {diff.lost}")
            con.execute(f"CREATE TABLE {schema}.{gained} AS SELECT {rows} FROM {diff.gained}")
    finally:
        con.execute("DETACH serving_pg")
    for mart in sorted(snapshots):
        table = sql.Identifier(load_schema, mart)
        d = docs.get(mart, MartDocs())
        if d.primary_key:
            pk = sql.SQL(", ").join(sql.Identifier(c) for c in d.primary_key)
            pg.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(table, pk))
        for n, (columns, include) in enumerate(d.indexes):
            ident = sql.Identifier(f"{mart}_serving_{n}"[:63])
            keys = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
            extra = (sql.SQL(" INCLUDE ({})").format(sql.SQL(", ").join(
                sql.Identifier(c) for c in include)) if include else sql.SQL(""))  # fmt: skip
            pg.execute(sql.SQL("CREATE INDEX {} ON {} ({}){}").format(ident, table, keys, extra))
        # statistics for the planner, and the visibility map an index-only scan needs;
        # then no autovacuum: a served table never changes, and an autovacuum worker's lock
        # would hold up every swap (it yields only to a lock wait longer than ours)
        pg.execute(sql.SQL("VACUUM (ANALYZE) {}").format(table))
        pg.execute(sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = false)").format(table))
        if d.description:
            pg.execute(
                sql.SQL("COMMENT ON TABLE {} IS {}").format(table, sql.Literal(d.description))
            )
        existing = {r[0] for r in pg.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s", [load_schema, mart])}  # fmt: skip
        for column, text in d.columns.items():
            if text and column in existing:
                pg.execute(sql.SQL("COMMENT ON COLUMN {} IS {}").format(
                    sql.Identifier(load_schema, mart, column), sql.Literal(text)))  # fmt: skip


def _tables(pg: Any, schema: str) -> set[str]:
    rows = pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema]).fetchall()
    return {r[0] for r in rows}


class _Drifted(Exception):
    """A served table did not hold what its recorded snapshot says (edited by hand?)."""

    def __init__(self, mart: str, rows: int, expected: int) -> None:
        super().__init__(f"{mart}: {rows} rows after its changes were applied, the lake "
                         f"has {expected}; copied whole instead")  # fmt: skip
        self.mart = mart


def _apply_delta(
    pg: Any, target: str, load_schema: str, mart: str, key: tuple[str, ...], rows_now: int
) -> int:
    """Delete the rows the mart lost by key, insert those it gained; check the row count."""
    from psycopg import sql

    lost, gained = (sql.Identifier(load_schema, t) for t in _delta_tables(mart))
    table = sql.Identifier(target, mart)
    match = sql.SQL(" AND ").join(sql.SQL("t.{0} = l.{0}").format(sql.Identifier(c)) for c in key)
    deleted = pg.execute(
        sql.SQL("DELETE FROM {} t USING {} l WHERE {}").format(table, lost, match)
    ).rowcount
    names = [r[0] for r in pg.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
        "AND table_name = %s ORDER BY ordinal_position",
        [load_schema, _delta_tables(mart)[1]])]  # fmt: skip
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in names)
    inserted = pg.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(table, cols, cols, gained)
    ).rowcount
    row = pg.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    if row is None or row[0] != rows_now:
        raise _Drifted(mart, row[0] if row else 0, rows_now)
    return int(deleted) + int(inserted)


def _swap(
    pg: Any, cfg: PostgresServing, load_schema: str, snapshots: dict[str, int],
    copied: set[str], run_id: str | None, token: str,
    deltas: dict[str, tuple[tuple[str, ...], int]], layouts: dict[str, str],
) -> tuple[list[str], list[str], str | None, dict[str, int]]:  # fmt: skip
    """One transaction: the marts of `deltas` (mart -> (key, its rows now)) get their
    changes, then the new set becomes `cfg.schema_name`. Returns (kept, dropped, the
    previous schema's new name, rows changed per mart of `deltas`)."""
    from psycopg import sql

    target, new, old = cfg.schema_name, f"_lakehouse_new_{token}", f"{OLD_PREFIX}{token}"
    with pg.transaction():
        pg.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
        # changed rows first, under row locks only: readers go on reading the old rows
        changed = {m: _apply_delta(pg, target, load_schema, m, key, rows)
                   for m, (key, rows) in sorted(deltas.items())}  # fmt: skip
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


def _plan_deltas(
    con: duckdb.DuckDBPyConnection, candidates: dict[str, tuple[int, int]],
    docs: dict[str, MartDocs],
) -> dict[str, MartDiff]:  # fmt: skip
    """For each mart of `candidates` (mart -> (snapshot served, snapshot now)) worth
    bringing up to date by its changed rows, those rows (`lake.diff`)."""
    from lake.diff import mart_diff

    out: dict[str, MartDiff] = {}
    for n, (mart, (old, new)) in enumerate(sorted(candidates.items())):
        try:
            diff = mart_diff(con, mart, old, new, f"_serving_delta_{n}")
        except duckdb.Error as exc:  # the served snapshot expired (`lakehouse maintain`)
            log.info("serving: %s copied whole (%s)", mart, str(exc).splitlines()[0])
            continue
        if diff.lost_rows + diff.gained_rows > DELTA_MAX_SHARE * max(diff.rows_now, 1):
            log.info("serving: %s copied whole: %d rows lost, %d gained of %d", mart,
                     diff.lost_rows, diff.gained_rows, diff.rows_now)  # fmt: skip
            diff.drop(con)
            continue
        how = "change feed" if diff.by_feed else "compared"
        log.info("serving: %s: %d rows lost, %d gained of %d (%s)", mart, diff.lost_rows,
                 diff.gained_rows, diff.rows_now, how)  # fmt: skip
        out[mart] = diff
    return out


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
        layouts = {m: _layout(con, m, s, docs.get(m, MartDocs())) for m, s in snapshots.items()}
        stale = {m for m, s in snapshots.items() if served.get(m) != (s, layouts[m])
                 or m not in present}  # fmt: skip
        t_diff = time.monotonic()
        diffs = _plan_deltas(con, {
            m: (served[m][0], snapshots[m]) for m in stale
            if m in present and m in served and served[m][1] == layouts[m]
            and docs.get(m, MartDocs()).primary_key}, docs)  # fmt: skip
        copied = stale - set(diffs)
        result.seconds["diff"] = round(time.monotonic() - t_diff, 3)
        token = secrets.token_hex(4)
        load_schema = f"{LOAD_PREFIX}{token}"
        try:
            _load(con, pg, cfg, load_schema, {m: snapshots[m] for m in copied}, docs, diffs)
            deltas = {m: (docs[m].primary_key, d.rows_now) for m, d in diffs.items()}
        finally:
            for diff in diffs.values():
                diff.drop(con)
        result.seconds["load"] = round(time.monotonic() - t0, 3)
        t1 = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                kept, dropped, _old, changed = _swap(
                    pg, cfg, load_schema, snapshots, copied, run_id, token, deltas, layouts
                )
                break
            except _Drifted as exc:  # what it held was not its snapshot: copy it whole
                log.warning("serving: %s", exc)
                deltas.pop(exc.mart)
                copied.add(exc.mart)
                _load(con, pg, cfg, load_schema, {exc.mart: snapshots[exc.mart]}, docs,
                      create_schema=False)  # fmt: skip
            except (errors.LockNotAvailable, errors.DeadlockDetected):
                if attempt >= SWAP_ATTEMPTS:
                    raise
                log.warning("serving: readers hold the served marts; swap retried (%d)", attempt)
                time.sleep(min(0.1 * attempt, 1.0))
        result.seconds["swap"] = round(time.monotonic() - t1, 3)
        t2 = time.monotonic()
        _vacuum(pg, cfg.schema_name, changed, {m: d.rows_now for m, d in diffs.items()})
        result.seconds["vacuum"] = round(time.monotonic() - t2, 3)
        _drop_leftovers(pg)
    result.copied, result.updated = sorted(copied), changed
    result.kept = [m for m in kept if m not in changed]
    result.dropped = dropped
    return result


VACUUM_SHARE = 0.2
"""A mart changed in place is vacuumed when its dead rows, or the rows inserted since its
last vacuum, pass this share of its rows (autovacuum's own defaults,
`autovacuum_vacuum_scale_factor` and `autovacuum_vacuum_insert_scale_factor`, with their
base thresholds of 50 and 1,000 rows)."""
ANALYZE_SHARE = 0.1
"""... and analyzed when the rows changed since its statistics pass this share
(`autovacuum_analyze_scale_factor`, base threshold 50)."""


def maintenance(changed: int, rows: int, dead: int, inserted: int, modified: int) -> str | None:
    """What autovacuum would run on a served table (autovacuum is off for them: its lock
    held up swaps) after a publish changed `changed` rows of its `rows` in place, given
    PostgreSQL's counts from before (`pg_stat_user_tables`: `n_dead_tup`,
    `n_ins_since_vacuum`, `n_mod_since_analyze`; they may already hold this publish's
    changes, which only brings the vacuum forward): "VACUUM (ANALYZE)", "VACUUM",
    "ANALYZE" or nothing. A small change costs no vacuum of the whole table's indexes."""
    vacuum = (dead + changed > 50 + VACUUM_SHARE * rows
              or inserted + changed > 1000 + VACUUM_SHARE * rows)  # fmt: skip
    analyze = modified + changed > 50 + ANALYZE_SHARE * rows
    if vacuum:
        return "VACUUM (ANALYZE)" if analyze else "VACUUM"
    return "ANALYZE" if analyze else None


def _vacuum(pg: Any, schema: str, changed: dict[str, int], rows: dict[str, int]) -> None:
    """The marts changed in place vacuumed (dead rows reclaimed, the visibility map that
    index-only scans read brought up to date) and analyzed as autovacuum would
    (`maintenance`). It takes no lock readers wait on."""
    from psycopg import sql

    stats = {
        r[0]: (int(r[1] or 0), int(r[2] or 0), int(r[3] or 0))
        for r in pg.execute(
            "SELECT relname, n_dead_tup, n_ins_since_vacuum, n_mod_since_analyze"
            " FROM pg_stat_user_tables WHERE schemaname = %s",
            [schema],
        ).fetchall()
    }
    for mart, n in sorted(changed.items()):
        how = maintenance(n, rows.get(mart, 0), *stats.get(mart, (0, 0, 0)))
        log.info("serving: %s: %d rows changed in place; %s", mart, n, how or "no vacuum yet")
        if how:
            pg.execute(sql.SQL("{} {}").format(sql.SQL(how), sql.Identifier(schema, mart)))
