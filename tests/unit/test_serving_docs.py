"""What serving reads of dbt's manifest: keys, indexes, and whether a mart is worth
bringing up to date by its changed rows."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.serving_docs import mart_docs


def _test(name: str, model: str, column: str | None = None, **kwargs: object) -> dict:
    return {"resource_type": "test", "attached_node": f"model.p.{model}", "column_name": column,
            "test_metadata": {"name": name, "kwargs": kwargs}}  # fmt: skip


def test_keys_indexes_and_whole_copies_come_from_the_manifest(tmp_path: Path) -> None:
    nodes = {
        "model.p.orders": {"resource_type": "model", "name": "orders", "description": "o",
                           "columns": {"order_id": {"description": "key"}},
                           "config": {"meta": {"serving": {"indexes": [
                               {"columns": ["customer_id"], "include": ["total"]}]}}}},
        "model.p.pairs": {"resource_type": "model", "name": "pairs",
                          "config": {"meta": {"serving": {"delta": False}}}},
        "model.p.loose": {"resource_type": "model", "name": "loose"},
        "t1": _test("unique", "orders", "order_id"),
        "t2": _test("not_null", "orders", "order_id"),
        "t3": _test("unique", "loose", "id"),  # unique but nullable: not a key
        "t4": _test("dbt_utils_free_unique_combination", "pairs", columns=["a", "b"]),
    }  # fmt: skip
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"nodes": nodes}))
    docs = mart_docs(path)
    assert docs["orders"].primary_key == ("order_id",)
    assert docs["orders"].indexes == ((("customer_id",), ("total",)),)
    assert docs["orders"].columns == {"order_id": "key"} and docs["orders"].by_delta
    assert docs["pairs"].primary_key == ("a", "b") and not docs["pairs"].by_delta
    assert docs["loose"].primary_key == () and docs["loose"].by_delta
    assert mart_docs(tmp_path / "missing.json") == {}
