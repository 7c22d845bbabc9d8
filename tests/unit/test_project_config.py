from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_project
from tests.conftest import REPO

GOOD = """
sources:
  - name: shop
    kind: csv
    tables:
      - name: orders
        path: ${ORDERS_PATH:-data/orders/*.csv}
        primary_key: order_id
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lakehouse.yml"
    path.write_text(text)
    return path


def test_the_committed_project_file_loads() -> None:
    project = load_project(REPO / "lakehouse.yml", env={})
    names = [(s.name, t.name) for s in project.spec.sources for t in s.tables]
    assert ("shop", "orders") in names
    assert project.lake.settings.url == str(REPO / "data" / "lake")
    assert project.build_db == REPO / "data" / "warehouse" / "build.duckdb"


def test_defaults_and_interpolation(tmp_path: Path) -> None:
    project = load_project(write(tmp_path, GOOD), env={"ORDERS_PATH": "x/*.csv"})
    table = project.spec.sources[0].tables[0]
    assert table.path == "x/*.csv" and table.primary_key == ["order_id"]
    assert load_project(write(tmp_path, GOOD), env={}).spec.sources[0].tables[0].path == (
        "data/orders/*.csv"
    )
    assert project.spec.ingest.workers == 2


def test_env_selects_the_lake(tmp_path: Path) -> None:
    project = load_project(write(tmp_path, GOOD), env={"LAKEHOUSE_LAKE_URL": "s3://b/p"})
    assert project.lake.settings.is_s3 and project.lake.settings.bucket == "b"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("kind: csv", "kind: ftp"), r"sources\[0\]\.kind: expected 'csv'"),
        (
            GOOD.replace("name: orders", "name: Orders"),
            r"sources\[0\]\.tables\[0\]\.name: .*not allowed",
        ),
        (GOOD.replace("primary_key", "primary_keys"), r"primary_keys: unknown key"),
        (GOOD + "lake: {url: 'gs://x'}\n", r"lake\.url: .*expected a local folder or s3"),
        ("sources: [", r"not valid YAML"),
        (GOOD.replace("${ORDERS_PATH:-data/orders/*.csv}", "${NOPE}"), r"NOPE is not set"),
        (GOOD + GOOD.replace("sources:\n", ""), r"names must be unique"),
        (  # an option of another kind of source names the key
            GOOD.replace("name: orders", "name: orders\n        cursor: updated_at"),
            r"sources\[0\]: .*tables\[0\] \(orders\): `cursor` does not apply to a csv source",
        ),
        (
            GOOD.replace("primary_key: order_id", "write_disposition: merge"),
            r"write_disposition merge needs a primary_key",
        ),
        (GOOD + "lake: {catalog: 'duckdb:x.db'}\n", r"lake\.catalog: .*expected sqlite:PATH"),
    ],
)
def test_errors_name_the_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as info:
        load_project(write(tmp_path, text), env={})
    assert str(tmp_path / "lakehouse.yml") in str(info.value)


def test_missing_project_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="project file not found"):
        load_project(tmp_path / "nope.yml", env={})
