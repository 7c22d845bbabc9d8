from pathlib import Path

import pytest
from lake.state import BatchRecord, Pending, load_state, save_state

from lake import LakeError, LakeSettings, LocalStorage, TableState


def test_local_writes_are_atomic_and_tmp_files_are_invisible(tmp_path: Path) -> None:
    storage = LocalStorage(LakeSettings(str(tmp_path)))
    storage.write_bytes("a/b.json", b"1")
    target = storage.begin_write("raw/s/t/load_date=2026-01-01/L1.parquet")
    Path(target).write_bytes(b"partial")
    assert list(storage.list("raw")) == []  # an unfinished write is not listed
    assert not storage.exists("raw/s/t/load_date=2026-01-01/L1.parquet")
    storage.finish_write("raw/s/t/load_date=2026-01-01/L1.parquet", target)
    assert list(storage.list("raw")) == ["raw/s/t/load_date=2026-01-01/L1.parquet"]
    assert storage.read_bytes("a/b.json") == b"1" and storage.read_bytes("nope") is None
    left = storage.begin_write("raw/s/t/load_date=2026-01-01/L2.parquet")
    Path(left).write_bytes(b"crashed")
    assert storage.cleanup_incomplete("raw") == 1 and not Path(left).exists()


def test_keys_cannot_escape_the_lake(tmp_path: Path) -> None:
    storage = LocalStorage(LakeSettings(str(tmp_path / "lake")))
    with pytest.raises(LakeError):
        storage.write_bytes("../outside.txt", b"x")


def test_state_round_trip(tmp_path: Path) -> None:
    storage = LocalStorage(LakeSettings(str(tmp_path)))
    state = TableState("shop", "orders")
    state.batches.append(
        BatchRecord(
            "L1", "raw/k", "fp", "f.csv", 10, 1, "2026-01-01T00:00:00+00:00", input={"size": 5}
        )
    )
    state.pending = Pending("L2", "raw/k2", "q/k2", "fp2", "g.csv")
    save_state(storage, state)
    loaded = load_state(storage, "shop", "orders")
    assert loaded == state
    assert (loaded.rows, loaded.quarantined, loaded.fingerprints) == (10, 1, {"fp"})
    assert load_state(storage, "shop", "other") == TableState("shop", "other")
