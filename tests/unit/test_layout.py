from datetime import date

import pytest

from lake import InvalidName, layout


def test_batch_and_quarantine_keys_are_exact() -> None:
    assert (
        layout.batch_key("shop", "orders", date(2026, 1, 2), "20260102T030405000000-abcd1234")
        == "raw/shop/orders/load_date=2026-01-02/20260102T030405000000-abcd1234.parquet"
    )
    assert (
        layout.quarantine_key("shop", "orders", date(2026, 1, 2), "L1")
        == "quarantine/shop/orders/load_date=2026-01-02/L1.parquet"
    )


def test_reader_glob_state_and_run_keys() -> None:
    assert layout.raw_glob("shop", "order_items") == "raw/shop/order_items/*/*.parquet"
    assert layout.state_key("shop", "orders") == "state/shop/orders.json"
    assert layout.run_key("20260101T000000-abc123") == "runs/20260101T000000-abc123.json"


@pytest.mark.parametrize(
    "name", ["../etc", "Orders", "or'ders", 'a"b', "a/b", "", "1abc", "a b", "x" * 64]
)
def test_outside_names_never_become_keys(name: str) -> None:
    with pytest.raises(InvalidName):
        layout.batch_key("shop", name, date(2026, 1, 1), "L1")
    with pytest.raises(InvalidName):
        layout.state_key(name, "orders")


@pytest.mark.parametrize("load_id", ["../x", "a/b", ".hidden", "a..b"])
def test_ids_are_checked(load_id: str) -> None:
    with pytest.raises(InvalidName):
        layout.batch_key("shop", "orders", date(2026, 1, 1), load_id)


def test_database_passwords_are_redacted() -> None:
    from ingest.sources.database import redact

    url = "postgresql://shop:s3cret@db:5432/shop"
    assert (
        redact(f'cannot reach "{url}"', url) == 'cannot reach "postgresql://shop:***@db:5432/shop"'
    )
    assert redact("host=db password=s3cret dbname=x", "host=db password=s3cret dbname=x") == (
        "host=db password=*** dbname=x"
    )


def test_original_files_are_content_addressed_and_names_checked() -> None:
    sha = "a" * 64
    assert layout.original_file_key("support", "tickets", sha, "ticket 12.txt") == (
        f"files/support/tickets/{sha}/ticket 12.txt"
    )
    for bad in ["../../etc/passwd", "a/b.pdf", "..pdf", ".hidden", "x\n.pdf"]:
        assert layout.original_file_key("s", "t", sha, bad).endswith(f"{sha}/original")
    with pytest.raises(InvalidName):
        layout.original_file_key("s", "t", "../x", "a.pdf")
