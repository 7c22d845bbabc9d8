"""Shared fixtures: the example data, and throwaway projects that point at it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from examples.shop.shop_api import ShopApi
from examples.shop.shop_data import generate
from pipeline.config import Project, load_project

if TYPE_CHECKING:
    from pipeline.run import RunRecord

REPO = Path(__file__).resolve().parents[1]
SCALE = 0.1  # 2,000 orders: small enough for many full runs, big enough to be real


@pytest.fixture(scope="session")
def shop_sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("shop_sources")
    counts = generate(out, scale=SCALE)
    return out, counts


ProjectFactory = Callable[..., Project]


def _write_project(
    root: Path, api: ShopApi, lake_url: str | None, env: Mapping[str, str] | None
) -> Project:
    """The committed lakehouse.yml, pointed at root's sources, lake and warehouse and at
    this project's own vendor API (for any process)."""
    sources = root / "sources"
    text = (REPO / "lakehouse.yml").read_text().replace("data/sources", str(sources))
    spec = yaml.safe_load(text)
    for source in spec["sources"]:
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


@pytest.fixture(scope="session")
def first_run(
    tmp_path_factory: pytest.TempPathFactory, shop_sources: tuple[Path, dict[str, int]]
) -> tuple[Path, RunRecord]:
    """The shop's first whole run (ingest, gates, build, publish), once per session: the
    project folder it left, and its record. `make_project(built=True)` starts from a copy,
    for tests to whom that run is only the set-up (a local lake moves with its folder:
    file keys are relative, the catalog follows its data path)."""
    from pipeline.run import run_pipeline

    root = tmp_path_factory.mktemp("first_run") / "p"
    shutil.copytree(shop_sources[0], root / "sources")
    with ShopApi(root / "sources" / "vendor" / "reviews.json") as api:
        record = run_pipeline(_write_project(root, api, None, None))
    assert record.status == "passed", record.error
    _parsed.append(root / "warehouse" / "dbt" / "target" / "partial_parse.msgpack")
    return root, record


_parsed: list[Path] = []
"""dbt's partial-parse state of the committed dbt project, once `first_run` has run: a new
project's first build re-parses only the files whose inputs differ (4 s less each). Not a
fixture of its own, so that a test that never builds does not wait for a whole run."""


@pytest.fixture
def make_project(
    request: pytest.FixtureRequest, tmp_path: Path, shop_sources: tuple[Path, dict[str, int]]
) -> Iterator[ProjectFactory]:
    """A copy of the committed project in tmp_path: its own sources (and vendor API),
    lake and warehouse; the repo's dbt project and suites. `built=True`: as the session's
    `first_run` left it (a local lake, no `env`)."""
    apis: list[ShopApi] = []

    def factory(
        lake_url: str | None = None,
        env: Mapping[str, str] | None = None,
        name: str = "p",
        built: bool = False,
    ) -> Project:
        root = tmp_path / name
        if built:
            assert lake_url is None and not env, "a built copy is of the local default"
            template, _ = request.getfixturevalue("first_run")
            shutil.copytree(template, root, ignore=shutil.ignore_patterns("lakehouse.yml"))
        elif not (root / "sources").exists():
            shutil.copytree(shop_sources[0], root / "sources")
            for parsed in _parsed:
                target = root / "warehouse" / "dbt" / "target"
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(parsed, target / parsed.name)
        api = ShopApi(root / "sources" / "vendor" / "reviews.json").__enter__()
        apis.append(api)
        return _write_project(root, api, lake_url, env)

    yield factory
    for api in apis:
        api.__exit__(None, None, None)
