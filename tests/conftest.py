"""Shared fixtures: the example data, and throwaway projects that point at it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import yaml

from pipeline.config import Project, load_project
from pipeline.shop_data import generate

REPO = Path(__file__).resolve().parents[1]
SCALE = 0.1  # 2,000 orders: small enough for many full runs, big enough to be real


@pytest.fixture(scope="session")
def shop_sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("shop_sources")
    counts = generate(out, scale=SCALE)
    return out / "shop", counts


ProjectFactory = Callable[..., Project]


@pytest.fixture
def make_project(tmp_path: Path, shop_sources: tuple[Path, dict[str, int]]) -> ProjectFactory:
    """A project in tmp_path with its own copy of the shop sources, lake and warehouse."""

    def factory(
        lake_url: str | None = None, env: Mapping[str, str] | None = None, name: str = "p"
    ) -> Project:
        root = tmp_path / name
        src = root / "sources" / "shop"
        if not src.exists():
            shutil.copytree(shop_sources[0], src)
        spec = yaml.safe_load((REPO / "lakehouse.yml").read_text())
        spec["lake"] = {"url": lake_url or str(root / "lake")}
        spec["warehouse"] = {
            "dir": str(root / "warehouse"),
            "dbt_project_dir": str(REPO / "dbt_project"),
            "expectations_dir": str(REPO / "expectations"),
        }
        for source in spec["sources"]:
            for table in source["tables"]:
                table["path"] = table["path"].replace("data/sources/shop", str(src))
        path = root / "lakehouse.yml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return load_project(path, env=dict(env or {}))

    return factory
