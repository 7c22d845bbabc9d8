from pathlib import Path

from pipeline.shop_data import generate


def _contents(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.csv"))}


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", scale=0.05, seed=7)
    b = generate(tmp_path / "b", scale=0.05, seed=7)
    generate(tmp_path / "c", scale=0.05, seed=8)
    assert a == b
    assert _contents(tmp_path / "a") == _contents(tmp_path / "b")
    assert _contents(tmp_path / "a") != _contents(tmp_path / "c")


def test_scale_sets_the_size_and_orders_split_by_month(tmp_path: Path) -> None:
    counts = generate(tmp_path, scale=0.05)
    assert counts["orders"] == 1000 and counts["customers"] == 100
    files = sorted((tmp_path / "shop" / "orders").glob("*.csv"))
    assert len(files) == 3
    lines = sum(len(f.read_text().splitlines()) - 1 for f in files)
    assert lines == counts["orders"]
    assert counts["order_items"] >= counts["orders"]
