"""What dbt says of each mart that serving needs: descriptions (table and column comments),
its primary key (from its `unique` + `not_null` or unique-combination tests) and the
indexes its `meta.serving.indexes` asks for; and the layout hash that tells whether a
served table can be updated in place or must be copied whole."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb


@dataclass(frozen=True)
class MartDocs:
    description: str = ""
    columns: dict[str, str] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ()
    indexes: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()
    """(key columns, included columns) of each index the model asks for in its dbt
    `meta: {serving: {indexes: [{columns: [...], include: [...]}]}}`."""
    by_delta: bool = True
    """False where the model says `meta: {serving: {delta: false}}`: every row of it changes
    with each build (a ratio to a total, an age), so looking for its changed rows only
    costs a comparison before the whole copy it gets anyway."""


def _serving(node: dict[str, Any]) -> dict[str, Any]:
    meta = (node.get("config") or {}).get("meta") or node.get("meta") or {}
    return meta.get("serving") or {}


def _indexes(node: dict[str, Any]) -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    wanted = _serving(node).get("indexes") or []
    out = []
    for index in wanted:
        cols = index.get("columns") if isinstance(index, dict) else index
        include = index.get("include", []) if isinstance(index, dict) else []
        if cols:
            out.append((tuple([cols] if isinstance(cols, str) else cols), tuple(include)))
    return tuple(out)


def mart_docs(manifest_path: Path) -> dict[str, MartDocs]:
    """Descriptions and keys of each model, from dbt's manifest (missing: none). A primary
    key is the column a model tests as both `unique` and `not_null`, or the columns of a
    `dbt_utils.unique_combination_of_columns` test; the mart gate has checked them."""
    if not manifest_path.exists():
        return {}
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError:
        return {}
    nodes = manifest.get("nodes", {})
    tests: dict[str, dict[str, set[str]]] = {}
    combos: dict[str, tuple[str, ...]] = {}
    for node in nodes.values():
        meta = node.get("test_metadata") or {}
        model = node.get("attached_node")
        if node.get("resource_type") != "test" or not model:
            continue
        if meta.get("name") in ("unique", "not_null") and node.get("column_name"):
            tests.setdefault(model, {}).setdefault(meta["name"], set()).add(node["column_name"])
        elif "unique_combination" in (meta.get("name") or ""):
            # dbt_utils' test, or one of its kind (the shop's dbt_utils_free_unique_combination)
            kwargs = meta.get("kwargs") or {}
            cols = kwargs.get("combination_of_columns") or kwargs.get("columns") or []
            if isinstance(cols, list) and cols:
                combos.setdefault(model, tuple(cols))
    out: dict[str, MartDocs] = {}
    for uid, node in nodes.items():
        if node.get("resource_type") != "model":
            continue
        found = tests.get(uid, {})
        keys = sorted(found.get("unique", set()) & found.get("not_null", set()))
        out[node.get("alias") or node["name"]] = MartDocs(
            description=node.get("description") or "",
            columns={c: (v.get("description") or "") for c, v in node.get("columns", {}).items()},
            primary_key=(keys[0],) if keys else combos.get(uid, ()),
            indexes=_indexes(node),
            by_delta=_serving(node).get("delta", True) is not False,
        )
    return out


def layout_hash(con: duckdb.DuckDBPyConnection, mart: str, snapshot: int, d: MartDocs) -> str:
    """What a served table is made of besides its rows: columns and types, key, indexes,
    comments. A mart whose layout changed is copied whole."""
    import hashlib

    from lake.diff import columns_at

    spec = {"columns": columns_at(con, mart, snapshot), "key": d.primary_key,
            "indexes": d.indexes, "description": d.description, "comments": d.columns}  # fmt: skip
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
