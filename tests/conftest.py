"""Shared fixtures: the example data, and throwaway projects that point at it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import yaml

from examples.shop.shop_api import ShopApi
from examples.shop.shop_data import generate
from pipeline.config import Project, load_project

REPO = Path(__file__).resolve().parents[1]
SCALE = 0.1  # 2,000 orders: small enough for many full runs, big enough to be real


@pytest.fixture(scope="session")
def shop_sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("shop_sources")
    counts = generate(out, scale=SCALE)
    return out, counts


ProjectFactory = Callable[..., Project]


@pytest.fixture
def make_project(
    tmp_path: Path, shop_sources: tuple[Path, dict[str, int]]
) -> Iterator[ProjectFactory]:
    """A copy of the committed project in tmp_path: its own sources (and vendor API),
    lake and warehouse; the repo's dbt project and suites."""
    apis: list[ShopApi] = []

    def factory(
        lake_url: str | None = None, env: Mapping[str, str] | None = None, name: str = "p"
    ) -> Project:
        root = tmp_path / name
        sources = root / "sources"
        if not sources.exists():
            shutil.copytree(shop_sources[0], sources)
        api = ShopApi(sources / "vendor" / "reviews.json").__enter__()
        apis.append(api)
        text = (REPO / "lakehouse.yml").read_text().replace("data/sources", str(sources))
        spec = yaml.safe_load(text)
        for source in spec["sources"]:  # this project's own vendor API, for any process
            if source["kind"] == "http":
                source["http"]["base_url"] = api.url
                source["http"]["auth"]["token"] = api.token
        spec["lake"] = {"url": lake_url or str(root / "lake")}
        spec["warehouse"] = {
            "dir": str(root / "warehouse"),
            "dbt_project_dir": str(REPO / "dbt_project"),
            "expectations_dir": str(REPO / "expectations"),
        }
        path = root / "lakehouse.yml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return load_project(path, env=dict(env or {}))

    yield factory
    for api in apis:
        api.__exit__(None, None, None)
