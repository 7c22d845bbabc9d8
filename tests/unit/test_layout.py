import pytest

from lake import InvalidName, layout


def test_batch_files_and_tables_are_exact() -> None:
    assert (
        layout.batch_file_key("shop", "orders", "20260102T030405000000-abcd1234")
        == "tables/shop/orders/20260102T030405000000-abcd1234.parquet"
    )
    assert layout.raw_table("shop", "order_items") == "lake.shop.order_items"
    assert (
        layout.quarantine_table("shop", "orders", "20260102T030405000000-abcd1234")
        == "shop__orders__20260102t030405000000abcd1234"
    )
    assert layout.run_key("20260101T000000-abc123") == "runs/20260101T000000-abc123.json"
    assert (layout.BATCHES, layout.EVENTS, layout.REJECTED) == (
        "_lakehouse.batches",
        "_lakehouse.batch_events",
        "_lakehouse.rejected_rows",
    )


@pytest.mark.parametrize(
    "name", ["../etc", "Orders", "or'ders", 'a"b', "a/b", "", "1abc", "a b", "x" * 64]
)
def test_outside_names_never_become_keys(name: str) -> None:
    with pytest.raises(InvalidName):
        layout.batch_file_key("shop", name, "L1")
    with pytest.raises(InvalidName):
        layout.raw_table(name, "orders")


@pytest.mark.parametrize("source", ["marts", "main"])  # "_x" is never a name
def test_the_lake_s_own_schemas_are_not_source_names(source: str) -> None:
    with pytest.raises(InvalidName, match="reserved"):
        layout.raw_table(source, "orders")


@pytest.mark.parametrize("load_id", ["../x", "a/b", ".hidden", "a..b"])
def test_ids_are_checked(load_id: str) -> None:
    with pytest.raises(InvalidName):
        layout.batch_file_key("shop", "orders", load_id)


def test_original_files_are_content_addressed_and_names_checked() -> None:
    sha = "a" * 64
    assert layout.original_file_key("support", "tickets", sha, "ticket 12.txt") == (
        f"files/support/tickets/{sha}/ticket 12.txt"
    )
    for bad in ["../../etc/passwd", "a/b.pdf", "..pdf", ".hidden", "x\n.pdf"]:
        assert layout.original_file_key("s", "t", sha, bad).endswith(f"{sha}/original")
    with pytest.raises(InvalidName):
        layout.original_file_key("s", "t", "../x", "a.pdf")


@pytest.mark.parametrize(
    ("pattern", "root"),
    [
        ("/data/in/*.csv", "/data/in/"),
        ("/data/in/2026-*/day=*/part.csv", "/data/in/"),
        ("/data/in/orders.csv", "/data/in/"),
        ("s3://bucket/prefix/**/*.parquet", "s3://bucket/prefix/"),
        ("/data/in/{a,b}.csv", "/data/in/"),
    ],
)
def test_a_file_is_known_by_its_path_below_the_glob_root(pattern: str, root: str) -> None:
    from ingest.sources.files import glob_root

    assert glob_root(pattern) == root
