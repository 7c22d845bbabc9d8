import sqlite3
from pathlib import Path

from examples.shop.shop_data import generate


def _contents(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".sqlite")
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}


def _db(root: Path) -> list[tuple]:
    con = sqlite3.connect(root / "shop.sqlite")
    rows = con.execute("SELECT * FROM orders ORDER BY order_id").fetchall()
    con.close()
    return rows


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", scale=0.05, seed=7)
    b = generate(tmp_path / "b", scale=0.05, seed=7)
    generate(tmp_path / "c", scale=0.05, seed=8)
    assert a == b
    assert _contents(tmp_path / "a") == _contents(tmp_path / "b")
    assert _db(tmp_path / "a") == _db(tmp_path / "b")
    assert _contents(tmp_path / "a") != _contents(tmp_path / "c")
    assert _db(tmp_path / "a") != _db(tmp_path / "c")


def test_every_kind_of_source_is_generated_at_the_chosen_scale(tmp_path: Path) -> None:
    counts = generate(tmp_path, scale=0.05)
    assert counts["orders"] == 1000 and counts["customers"] == 100
    assert counts["order_items"] >= counts["orders"]
    con = sqlite3.connect(tmp_path / "shop.sqlite")
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"customers", "products", "orders", "order_items", "inventory"}
    assert con.execute("SELECT count(*) FROM orders").fetchone() == (1000,)
    con.close()
    assert (tmp_path / "vendor" / "reviews.json").exists()
    assert (tmp_path / "suppliers" / "catalog.csv").exists()
    assert len(list((tmp_path / "iot").glob("*.csv"))) == 3
    assert len(list((tmp_path / "web").glob("*.jsonl"))) == 3
    assert len(list((tmp_path / "support" / "tickets").glob("*.txt"))) == counts["tickets"]
    pdfs = list((tmp_path / "finance" / "invoices").glob("*.pdf"))
    assert len(pdfs) == counts["invoices"]
    assert all(p.read_bytes().startswith(b"%PDF") for p in pdfs)
