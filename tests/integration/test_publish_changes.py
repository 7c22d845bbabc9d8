"""A run gates and publishes only what changed since the published set: a mart no build
touched keeps its view and snapshot; of a mart rows were added to, only the rows newer
than its published snapshot are new; a replaced mart is new whole."""

from __future__ import annotations

from pathlib import Path

from lake import Lake, LakeSettings
from lake.layout import BUILD, MARTS
from lake.publish import changes_since, current_snapshot, publish_marts, published_snapshots


def test_only_the_marts_builds_touched_are_new_and_republished(tmp_path: Path) -> None:
    lake = Lake(LakeSettings.resolve(str(tmp_path / "lake"), tmp_path, env={}))
    con = lake.connect()
    con.execute(f"CREATE SCHEMA lake.{BUILD}")
    for mart in ("appended", "replaced", "untouched"):
        con.execute(f"CREATE TABLE lake.{BUILD}.{mart} AS SELECT range AS id FROM range(3)")
    first = current_snapshot(con)
    publish_marts(con, dict.fromkeys(["appended", "replaced", "untouched"], first), "run-1")
    assert changes_since(con, published_snapshots(con), current_snapshot(con)) == {}

    con.execute(f"INSERT INTO lake.{BUILD}.appended VALUES (3), (4)")
    con.execute(f"DELETE FROM lake.{BUILD}.appended WHERE id = 0")
    con.execute(f"CREATE TABLE lake.{BUILD}.replaced__dbt_tmp AS SELECT 9 AS id")
    con.execute(f"DROP TABLE lake.{BUILD}.replaced")
    con.execute(f"ALTER TABLE lake.{BUILD}.replaced__dbt_tmp RENAME TO replaced")
    con.execute(f"CREATE TABLE lake.{BUILD}.added AS SELECT 1 AS id")
    now = current_snapshot(con)
    changed = changes_since(con, published_snapshots(con), now)
    assert changed == {"appended": first, "replaced": None, "added": None}
    new_rows = con.execute(
        f"SELECT id FROM lake.{BUILD}.appended WHERE snapshot_id > {first} ORDER BY id"
    ).fetchall()
    assert new_rows == [(3,), (4,)]  # what the gate reads of it

    views = "SELECT view_name, sql FROM duckdb_views() WHERE schema_name = ? ORDER BY 1"
    before = dict(con.execute(views, [MARTS]).fetchall())
    snapshots = {m: now if m in changed else first
                 for m in ("added", "appended", "replaced", "untouched")}  # fmt: skip
    publication = publish_marts(con, snapshots, "run-2")
    after = dict(con.execute(views, [MARTS]).fetchall())
    assert publication.snapshots["untouched"] == first
    assert after["untouched"] == before["untouched"]  # not re-created
    assert f"VERSION => {now}" in after["appended"] and f"VERSION => {now}" in after["added"]
    assert con.execute(f"SELECT count(*) FROM lake.{MARTS}.appended").fetchone() == (4,)
    assert con.execute(f"SELECT * FROM lake.{MARTS}.replaced").fetchall() == [(9,)]
    con.close()


def test_a_reader_kept_open_sees_each_new_publication(tmp_path: Path) -> None:
    """As a BI pool keeps it: one DuckDB connection reads the latest publication at each
    statement, and one set for the whole of an explicit transaction."""
    lake = Lake(LakeSettings.resolve(str(tmp_path / "lake"), tmp_path, env={}))
    writer = lake.connect()
    writer.execute(f"CREATE SCHEMA lake.{BUILD}")

    def build_and_publish(value: int) -> None:
        writer.execute(f"CREATE OR REPLACE TABLE lake.{BUILD}.m AS SELECT {value} AS v")
        publish_marts(writer, {"m": current_snapshot(writer)}, f"run-{value}")

    build_and_publish(1)
    reader = lake.connect(lake_read_only=True)
    read = f"SELECT v FROM lake.{MARTS}.m"
    assert reader.execute(read).fetchall() == [(1,)]
    build_and_publish(2)
    assert reader.execute(read).fetchall() == [(2,)]  # no reconnect needed
    reader.execute("BEGIN")
    assert reader.execute(read).fetchall() == [(2,)]
    build_and_publish(3)
    assert reader.execute(read).fetchall() == [(2,)]  # one set per transaction
    reader.execute("COMMIT")
    assert reader.execute(read).fetchall() == [(3,)]
    reader.close()
    writer.close()


def test_a_replaced_mart_diffs_by_key_as_it_does_whole(tmp_path: Path) -> None:
    """A rebuilt table's changes, found by key and row hash, are those both versions
    compared whole give: a changed value (NULLs too), a deleted and an added row; either
    way round (a rollback); and nothing is kept when more than `max_share` changed."""
    from lake.diff import mart_diff

    lake = Lake(LakeSettings.resolve(str(tmp_path / "lake"), tmp_path, env={}))
    con = lake.connect()
    con.execute(f"CREATE SCHEMA lake.{BUILD}")
    con.execute(f"CREATE TABLE lake.{BUILD}.m AS SELECT range AS id, range % 5 AS g, "
                "[range] AS l, NULL::INT AS n FROM range(1000)")  # fmt: skip
    first = current_snapshot(con)
    con.execute(
        f"CREATE OR REPLACE TABLE lake.{BUILD}.m AS SELECT id, CASE WHEN id = 7 THEN 9 ELSE g "
        f"END AS g, l, CASE WHEN id = 8 THEN 1 END AS n FROM lake.{BUILD}.m WHERE id <> 3 "
        "UNION ALL SELECT 5000, 1, [1], NULL"
    )
    second = current_snapshot(con)
    for old, new in ((first, second), (second, first)):
        by_key = mart_diff(con, "m", old, new, "k", key=("id",), max_share=0.25)
        whole = mart_diff(con, "m", old, new, "w")
        assert by_key is not None and whole is not None
        assert not by_key.by_feed and not whole.by_feed
        assert (by_key.lost_rows, by_key.gained_rows, by_key.rows_now) == (3, 3, 1000)
        assert (whole.lost_rows, whole.gained_rows) == (3, 3)
        rows = "SELECT * FROM {} ORDER BY ALL"
        assert con.sql(rows.format(by_key.gained)).fetchall() == con.sql(
            rows.format(whole.gained)).fetchall()  # fmt: skip
        assert con.sql(rows.format(by_key.lost)).fetchall() == con.sql(
            f"SELECT id FROM {whole.lost} ORDER BY ALL").fetchall()  # fmt: skip
        assert len(con.sql(rows.format(by_key.gained)).fetchall()) == 3
        by_key.drop(con)
        whole.drop(con)
    assert mart_diff(con, "m", first, second, "k", key=("id",), max_share=0.001) is None
    left = con.sql("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()
    assert left == (0,)
