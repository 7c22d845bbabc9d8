"""How a mart changed between two lake snapshots, as the rows it lost and the rows it gained.

Serving databases outside the lake (PostgreSQL for BI) hold a copy of each mart at the
snapshot they last took. Bringing a copy up to date costs the rows that differ, not the
table, when the difference is known:

- the mart is the same table at both snapshots (a model maintained by delta): its change
  feed (`ducklake_table_changes`) between them, netted per row id as the dbt macro
  `lake_diff` does (the first change of a row id says what it was, its last what it is;
  a row rewritten with the same values cancels out);
- its table was replaced in between (a table model's rebuild, a full refresh), or the
  new snapshot is the older one (a rollback): both versions compared, by key and a hash of
  each row where the mart has a key, else whole (`EXCEPT ALL`).

The result is exact, as multisets: old - lost + gained = new; by key, up to a collision of
64-bit row hashes (a changed row whose hash stays the same, about 1 in 10^19 per row).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from lake import layout
from lake.duck import quote_ident, quote_str
from lake.publish import METADATA, mart_at


@dataclass(frozen=True)
class MartDiff:
    lost: str
    """A temporary table of the rows the mart lost (old versions of changed rows too);
    compared by key, their key columns only."""
    gained: str
    """A temporary table of the rows it gained (new versions of changed rows too)."""
    lost_rows: int
    gained_rows: int
    rows_now: int
    rows_then: int
    """Its rows at the old snapshot: rows_then - lost_rows + gained_rows == rows_now."""
    by_feed: bool
    """Read from the change feed (True) or by comparing both versions (False)."""

    def drop(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"DROP TABLE IF EXISTS {self.lost}")
        con.execute(f"DROP TABLE IF EXISTS {self.gained}")


def table_id(con: duckdb.DuckDBPyConnection, mart: str, snapshot: int) -> int | None:
    """The DuckLake table id of `lake._build.<mart>` as of `snapshot`."""
    row = con.execute(
        f"""SELECT t.table_id FROM {METADATA}.ducklake_table t
        JOIN {METADATA}.ducklake_schema s ON s.schema_id = t.schema_id
        WHERE s.schema_name = ? AND t.table_name = ? AND t.begin_snapshot <= ?
          AND (t.end_snapshot IS NULL OR t.end_snapshot > ?)""",
        [layout.BUILD, mart, snapshot, snapshot],
    ).fetchone()
    return int(row[0]) if row else None


def columns_at(con: duckdb.DuckDBPyConnection, mart: str, snapshot: int) -> list[tuple[str, str]]:
    """(name, type) of each column of the mart as of `snapshot`."""
    rows = con.execute(f"DESCRIBE SELECT * FROM {mart_at(mart, snapshot, 'lake')}").fetchall()
    return [(r[0], r[1]) for r in rows]


def mart_diff(
    con: duckdb.DuckDBPyConnection, mart: str, old: int, new: int, name: str,
    key: tuple[str, ...] = (), max_share: float | None = None,
) -> MartDiff | None:  # fmt: skip
    """The rows `mart` lost and gained from snapshot `old` to `new`, kept in the temporary
    tables `<name>_lost` and `<name>_gained` of `con` (drop them with `MartDiff.drop`). Both
    versions must have the same columns (`columns_at`). None, with nothing kept, when the
    rows lost and gained are more than `max_share` of the rows it has now.

    Without a change feed between them, a mart with a `key` (unique in each version) is
    compared by key and a hash of each row: one join of two narrow scans finds the keys
    whose row differs, and only their rows are read again (`lost` then holds the key
    columns only). Without a key both versions are compared whole (`EXCEPT ALL`)."""
    cols = ", ".join(quote_ident(c) for c, _ in columns_at(con, mart, new))
    by_feed = new > old and table_id(con, mart, old) == table_id(con, mart, new) is not None
    if not by_feed and key:
        return _diff_by_key(con, mart, old, new, name, key, cols, max_share)
    lost, gained = quote_ident(f"{name}_lost"), quote_ident(f"{name}_gained")
    if by_feed:
        after = "change_type IN ('insert', 'update_postimage')"
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {quote_ident(name + "_feed")} AS
            SELECT {cols}, {after} AS _is_after,
                row_number() OVER (PARTITION BY rowid ORDER BY snapshot_id, {after}) AS _nth,
                count(*) OVER (PARTITION BY rowid) AS _changes
            FROM ducklake_table_changes('lake', {quote_str(layout.BUILD)}, {quote_str(mart)},
                                        {int(old) + 1}, {int(new)})"""
        )
        feed = quote_ident(name + "_feed")
        was = f"SELECT {cols} FROM {feed} WHERE NOT _is_after AND _nth = 1"
        now = f"SELECT {cols} FROM {feed} WHERE _is_after AND _nth = _changes"
    else:
        was = f"SELECT {cols} FROM {mart_at(mart, old, 'lake')}"
        now = f"SELECT {cols} FROM {mart_at(mart, new, 'lake')}"
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {lost} AS ({was}) EXCEPT ALL ({now})")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {gained} AS ({now}) EXCEPT ALL ({was})")
    finally:
        con.execute(f"DROP TABLE IF EXISTS {quote_ident(name + '_feed')}")
    counts = con.execute(
        f"SELECT (SELECT count(*) FROM {lost}), (SELECT count(*) FROM {gained}), "
        f"(SELECT count(*) FROM {mart_at(mart, new, 'lake')}), "
        f"(SELECT count(*) FROM {mart_at(mart, old, 'lake')})"
    ).fetchone()
    assert counts is not None
    lost_rows, gained_rows, rows_now, rows_then = (int(c) for c in counts)
    diff = MartDiff(lost, gained, lost_rows, gained_rows, rows_now, rows_then, by_feed)
    if _too_many(max_share, lost_rows, gained_rows, rows_now):
        diff.drop(con)
        return None
    return diff


def _too_many(max_share: float | None, lost_rows: int, gained_rows: int, rows_now: int) -> bool:
    return max_share is not None and lost_rows + gained_rows > max_share * max(rows_now, 1)


def _diff_by_key(
    con: duckdb.DuckDBPyConnection, mart: str, old: int, new: int, name: str,
    key: tuple[str, ...], cols: str, max_share: float | None,
) -> MartDiff | None:  # fmt: skip
    lost, gained = quote_ident(f"{name}_lost"), quote_ident(f"{name}_gained")
    changed = quote_ident(f"{name}_changed")
    was, now = mart_at(mart, old, "lake"), mart_at(mart, new, "lake")
    k = ", ".join(quote_ident(c) for c in key)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {changed} AS
        SELECT {k}, was._h IS NOT NULL AS _was, now._h IS NOT NULL AS _now
        FROM (SELECT {k}, hash({cols}) AS _h FROM {was}) AS was
        FULL JOIN (SELECT {k}, hash({cols}) AS _h FROM {now}) AS now USING ({k})
        WHERE was._h IS DISTINCT FROM now._h"""
    )
    try:
        row = con.execute(
            f"SELECT count(*) FILTER (_was), count(*) FILTER (_now), "
            f"(SELECT count(*) FROM {now}), (SELECT count(*) FROM {was}) FROM {changed}"
        ).fetchone()
        assert row is not None
        lost_rows, gained_rows, rows_now, rows_then = (int(v) for v in row)
        if _too_many(max_share, lost_rows, gained_rows, rows_now):
            return None
        con.execute(f"CREATE OR REPLACE TEMP TABLE {lost} AS SELECT {k} FROM {changed} WHERE _was")
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {gained} AS SELECT {cols} FROM {now}
            SEMI JOIN (SELECT {k} FROM {changed} WHERE _now) AS c USING ({k})"""
        )
    finally:
        con.execute(f"DROP TABLE IF EXISTS {changed}")
    return MartDiff(lost, gained, lost_rows, gained_rows, rows_now, rows_then, by_feed=False)
