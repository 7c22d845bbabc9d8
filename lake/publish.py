"""Publishing marts: one DuckLake commit re-points every published view, no data copied.

dbt builds the marts as tables in `lake._build`. Each commit of the lake is a snapshot, so
the marts as they were when the mart gate read them stay readable at that snapshot
(`AT (VERSION => n)`) however the next build changes them. A publication is then one
transaction that (re)creates `lake.marts.<mart>` as `SELECT * FROM _build.<mart> AT
(VERSION => n)` for every mart, drops the views of marts no longer built, and records
itself in `_lakehouse.publications`. A reader's transaction sees one snapshot of the
lake, so it sees the previous set or the new one, never a mix, and never waits: nothing
is locked and no file is replaced. Its cost is a few catalog rows per mart, whatever
their size.

Rolling back is a publication too (of the set before the current one), so the history
of what was published, and when, is the publications table itself.

A publication may hold marts of different builds: `lakehouse stream` rebuilds the
real-time marts every few seconds and publishes them at the new snapshot, while the other
marts stay at the snapshot they were gated at. Each publication records every mart's
snapshot (`mart_snapshots`), so a rollback or `--at` restores exactly that set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import duckdb

from lake import layout
from lake.batches import in_transaction, transaction
from lake.duck import quote_ident
from lake.failpoints import failpoint

METADATA = "__ducklake_metadata_lake"
"""Where DuckLake attaches the catalog's own tables of the lake attached as `lake`."""


@dataclass(frozen=True)
class Publication:
    run_id: str | None
    build_snapshot: int
    marts: list[str]
    forced: bool
    rollback_of: str | None
    published_at: datetime
    snapshots: dict[str, int]
    """Each published mart's snapshot (`build_snapshot` for all, before partial ones)."""


def mart_at(mart: str, snapshot: int, catalog: str | None = None) -> str:
    """`_build.<mart> AT (VERSION => n)`: a mart as built at a snapshot. Without a catalog
    it resolves inside the lake, under any alias a reader attaches it as."""
    where = f"{catalog}." if catalog else ""
    return (f"{where}{quote_ident(layout.BUILD)}.{quote_ident(mart)} "
            f"AT (VERSION => {int(snapshot)})")  # fmt: skip


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT id FROM lake.current_snapshot()").fetchone()
    return int(row[0]) if row else 0


def built_marts(con: duckdb.DuckDBPyConnection, snapshot: int) -> list[str]:
    """The marts in `lake._build` as of `snapshot` (dbt's own temporary tables left out)."""
    return [name for name, _, _ in _build_tables(con, snapshot)]


def _build_tables(con: duckdb.DuckDBPyConnection, snapshot: int) -> list[tuple[str, int, int]]:
    """(name, table id, first snapshot of that table) of each mart as of `snapshot`."""
    return con.execute(
        f"""SELECT t.table_name, t.table_id, t.begin_snapshot FROM {METADATA}.ducklake_table t
        JOIN {METADATA}.ducklake_schema s ON s.schema_id = t.schema_id
        WHERE s.schema_name = ? AND t.begin_snapshot <= ?
          AND (t.end_snapshot IS NULL OR t.end_snapshot > ?)
          AND s.begin_snapshot <= ? AND (s.end_snapshot IS NULL OR s.end_snapshot > ?)
          AND t.table_name NOT LIKE '%\\_\\_dbt\\_%' ESCAPE '\\'
        ORDER BY 1""",
        [layout.BUILD, snapshot, snapshot, snapshot, snapshot],
    ).fetchall()


def changes_since(
    con: duckdb.DuckDBPyConnection, published: dict[str, int], snapshot: int
) -> dict[str, int | None]:
    """The marts in `lake._build` at `snapshot` that changed since the snapshot they were
    published at (`published`): each with that snapshot when rows were only added to or
    removed from its table since (its rows with a newer `snapshot_id` are the new ones),
    or None when it is new or its table was replaced (a table model's rebuild, a full
    refresh: every row is new). Unchanged marts are left out: what was gated and
    published for them still holds."""
    tables = _build_tables(con, snapshot)
    oldest = min([published[name] for name, *_ in tables if name in published], default=snapshot)
    # which tables each commit since wrote to: `inserted_into_table:<id>`, `inlined_insert:
    # <id>`, `deleted_from_table:<id>`, ... (DuckLake's own change summary per snapshot)
    touched: dict[int, int] = {}
    for snap, made in con.execute(
        f"SELECT snapshot_id, changes_made FROM {METADATA}.ducklake_snapshot_changes "
        "WHERE snapshot_id > ? AND snapshot_id <= ? ORDER BY snapshot_id",
        [oldest, snapshot],
    ).fetchall():
        for change in (made or "").split(","):
            target = change.rpartition(":")[2]
            if target.isdigit():
                touched[int(target)] = snap  # the newest commit that touched it
    out: dict[str, int | None] = {}
    for name, table_id, begun in tables:
        since = published.get(name)
        if since is None or begun > since:
            out[name] = None
        elif touched.get(table_id, 0) > since:
            out[name] = since
    return out


def publications(con: duckdb.DuckDBPyConnection) -> list[Publication]:
    """Every publication, in commit order."""
    rows = con.execute(
        "SELECT run_id, build_snapshot, marts, forced, rollback_of, published_at, "
        f"mart_snapshots FROM lake.{layout.PUBLICATIONS} ORDER BY snapshot_id, published_at"
    ).fetchall()
    return [
        Publication(r[0], int(r[1]), list(r[2] or []), bool(r[3]), r[4], r[5],
                    json.loads(r[6]) if r[6] else {m: int(r[1]) for m in r[2] or []})
        for r in rows
    ]  # fmt: skip


def published_stack(history: list[Publication]) -> list[Publication]:
    """The sets a rollback can return to, the one in place last: each publication stacks
    its set; a rollback takes the top one off."""
    stack: list[Publication] = []
    for p in history:
        if p.rollback_of is not None and stack:
            stack.pop()
        else:
            stack.append(p)
    return stack


def published_snapshots(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Each published mart's snapshot now (after rollbacks)."""
    stack = published_stack(publications(con))
    return dict(stack[-1].snapshots) if stack else {}


def publish_marts(
    con: duckdb.DuckDBPyConnection,
    snapshots: dict[str, int],
    run_id: str | None,
    forced: bool = False,
    rollback_of: str | None = None,
) -> Publication:
    """Point `lake.marts.<mart>` at `lake._build.<mart>` as of its snapshot, for every mart
    in `snapshots`, and only those, in one commit; a view already at its snapshot is left
    as it is."""
    schema = quote_ident(layout.MARTS)
    marts = sorted(snapshots)
    snapshot = max(snapshots.values())
    in_place = published_snapshots(con)

    @in_transaction
    def commit() -> None:
        with transaction(con):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS lake.{schema}")
            existing = {
                r[0]
                for r in con.execute(
                    "SELECT view_name FROM duckdb_views() WHERE database_name = 'lake' "
                    "AND schema_name = ?",
                    [layout.MARTS],
                ).fetchall()
            }
            for gone in sorted(existing - set(marts)):
                con.execute(f"DROP VIEW lake.{schema}.{quote_ident(gone)}")
            for mart in marts:
                if mart in existing and in_place.get(mart) == snapshots[mart]:
                    continue  # published at this snapshot already: nothing changed
                con.execute(f"CREATE OR REPLACE VIEW lake.{schema}.{quote_ident(mart)} AS "
                            f"SELECT * FROM {mart_at(mart, snapshots[mart])}")  # fmt: skip
            con.execute(
                f"INSERT INTO lake.{layout.PUBLICATIONS} VALUES (?, ?, ?, ?, ?, now(), ?)",
                [run_id, snapshot, marts, forced, rollback_of,
                 json.dumps(snapshots, sort_keys=True)],
            )  # fmt: skip
            failpoint("publish_before_commit")

    commit()
    return publications(con)[-1]


def rollback(con: duckdb.DuckDBPyConnection) -> tuple[Publication, Publication]:
    """Publish again the set that was in place before the current one; returns (the set
    rolled back, the set now published)."""
    stack = published_stack(publications(con))
    if len(stack) < 2:
        raise LookupError("nothing to roll back to: fewer than two sets were published")
    current, previous = stack[-1], stack[-2]
    now = publish_marts(
        con, previous.snapshots, previous.run_id,
        forced=previous.forced, rollback_of=current.run_id or "",
    )  # fmt: skip
    return current, now
