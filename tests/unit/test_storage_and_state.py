from pathlib import Path

import pytest

from lake import LakeError, LakeSettings, LocalStorage
from lake.batches import earliest, latest


def test_local_writes_are_atomic_and_listed(tmp_path: Path) -> None:
    storage = LocalStorage(LakeSettings(str(tmp_path)))
    storage.write_bytes("runs/a.json", b"1")
    storage.write_bytes("runs/a.json", b"2")
    assert list(storage.list("runs")) == ["runs/a.json"]  # no temp file left, none listed
    assert storage.read_bytes("runs/a.json") == b"2" and storage.read_bytes("nope") is None
    storage.delete("runs/a.json")
    storage.delete("runs/a.json")  # a missing object is not an error
    assert not storage.exists("runs/a.json")


def test_keys_cannot_escape_the_lake(tmp_path: Path) -> None:
    storage = LocalStorage(LakeSettings(str(tmp_path / "lake")))
    with pytest.raises(LakeError):
        storage.write_bytes("../outside.txt", b"x")


def test_watermarks_compare_as_numbers_or_as_text() -> None:
    assert latest("9", "10") == "10" and earliest("9", "10") == "9"  # ids: by value
    assert latest("2026-03-01 10:00:00", "2026-02-28 23:00:00") == "2026-03-01 10:00:00"
    assert earliest("2026-03-01", None) is None  # None: from the beginning
    assert latest(None, "5") == "5"


def test_the_batch_log_read_once_for_a_run_is_read_again_after_any_commit(tmp_path: Path) -> None:
    """An ingest run folds the log once (`StatesRead`) and hands each table its state; a
    commit since (another writer's) or a table taken twice makes it read the log again."""
    from bench.batch_commit import land_batches
    from lake import Lake, StatesRead, load_state

    lake_dir = tmp_path / "lake"
    land_batches(lake_dir, 2, rows=5, table="a")
    land_batches(lake_dir, 1, rows=5, table="b")
    lake = Lake(LakeSettings.resolve(str(lake_dir), tmp_path, env={}))
    con = lake.connect()
    states = StatesRead(con)
    assert len(states.take(con, "bench", "a").batches) == 2  # as read
    assert len(states.take(con, "bench", "a").batches) == 2  # again: read again, not empty
    assert states.take(con, "bench", "new").batches == []  # a table with no batch yet
    land_batches(lake_dir, 1, rows=5, offset=1, table="b")  # another writer commits
    taken = states.take(con, "bench", "b")
    assert len(taken.batches) == 2 == len(load_state(con, "bench", "b").batches)


def test_a_lake_of_an_older_version_gets_its_new_columns_on_first_connect(tmp_path: Path) -> None:
    import lake.catalog
    from lake import Lake, layout

    lake_ = Lake(LakeSettings.resolve(str(tmp_path / "lake"), tmp_path, env={}))
    con = lake_.connect()  # a new lake: its own tables made
    con.execute(f"ALTER TABLE lake.{layout.PUBLICATIONS} DROP COLUMN mart_snapshots")
    con.close()
    lake.catalog._bootstrapped.clear()  # (as a new process would find it)
    con = lake_.connect()
    assert con.execute(f"SELECT mart_snapshots FROM lake.{layout.PUBLICATIONS}").fetchall() == []
