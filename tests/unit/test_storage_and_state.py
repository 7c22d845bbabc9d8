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
