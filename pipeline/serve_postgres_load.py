"""The load step of PostgreSQL serving (`pipeline.serve_postgres`): marts copied whole into
the private load schema (DuckDB's postgres extension, binary COPY), keyed, indexed, vacuumed
and commented there; and for a mart brought up to date by its changed rows, the keys of the
rows it lost and the rows it gained, for the swap to apply."""

from __future__ import annotations

import time
from typing import Any

import duckdb

from lake.diff import MartDiff
from lake.duck import quote_ident, quote_str
from lake.publish import mart_at
from pipeline.serve_postgres_delta import delta_tables
from pipeline.serving_docs import MartDocs


def select_for_postgres(con: duckdb.DuckDBPyConnection, source: str) -> str:
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


def load(
    con: duckdb.DuckDBPyConnection, pg: Any, url: str, load_schema: str,
    snapshots: dict[str, int], docs: dict[str, MartDocs],
    diffs: dict[str, MartDiff] | None = None, create_schema: bool = True,
    timings: dict[str, dict[str, float]] | None = None,
) -> None:  # fmt: skip
    """Copy the marts of `snapshots` whole into `load_schema`, and for each mart of `diffs`
    the keys of the rows it lost (`<mart>__lost`) and the rows it gained (`__gained`)."""
    from psycopg import sql

    timings = {} if timings is None else timings

    def took(mart: str, part: str, since: float) -> None:
        timings.setdefault(mart, {})[part] = round(time.monotonic() - since, 3)

    schema = f"serving_pg.{quote_ident(load_schema)}"
    con.execute(f"ATTACH {quote_str(url)} AS serving_pg (TYPE postgres)")
    try:
        if create_schema:
            con.execute(f"CREATE SCHEMA {schema}")
        for mart, snapshot in sorted(snapshots.items()):
            t0 = time.monotonic()
            source = mart_at(mart, snapshot, "lake")
            con.execute(
                f"CREATE TABLE {schema}.{quote_ident(mart)} AS "
                f"SELECT {select_for_postgres(con, source)} FROM {source}"
            )
            took(mart, "copy", t0)
        for mart, diff in sorted((diffs or {}).items()):
            t0 = time.monotonic()
            key = ", ".join(quote_ident(c) for c in docs[mart].primary_key)
            lost, gained = (quote_ident(t) for t in delta_tables(mart))
            rows = select_for_postgres(con, diff.gained)
            con.execute(f"CREATE TABLE {schema}.{lost} AS SELECT {key} FROM {diff.lost}")
            con.execute(f"CREATE TABLE {schema}.{gained} AS SELECT {rows} FROM {diff.gained}")
            took(mart, "rows", t0)
    finally:
        con.execute("DETACH serving_pg")
    for mart in sorted(snapshots):
        t0 = time.monotonic()
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
        took(mart, "index", t0)
