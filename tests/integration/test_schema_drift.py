"""Schema drift between batches, under each policy; the lake keeps the history."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ingest import run_ingest
from lake import load_state
from pipeline.config import load_project
from tests.integration.helpers import raw_rows


def _setup(tmp_path: Path, policy: str):
    d = tmp_path / "in"
    d.mkdir()
    (d / "readings_1.csv").write_text("sensor_id,celsius\n1,4.5\n2,5.0\n")
    spec = {
        "lake": {"url": str(tmp_path / "lake")},
        "sources": [{"name": "iot", "kind": "csv", "schema_policy": policy,
                     "tables": [{"name": "readings", "path": str(d / "*.csv")}]}],
    }  # fmt: skip
    (tmp_path / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    project = load_project(tmp_path / "lakehouse.yml", env={})
    first = run_ingest(project.lake, project.spec.sources, project.base_dir)
    assert first.ok and first.rows == 2
    # the device firmware adds a column and sends text where numbers were
    (d / "readings_2.csv").write_text("sensor_id,celsius,humidity\n3,warm,40\n4,6.1,41\n5,6.3,39\n")
    return project


def test_evolve_lands_the_new_shape_and_records_it(tmp_path: Path) -> None:
    project = _setup(tmp_path, "evolve")
    report = run_ingest(project.lake, project.spec.sources, project.base_dir)
    assert report.ok and report.rows == 3
    assert raw_rows(project, "iot", "readings") == 5
    state = load_state(project.lake.storage, "iot", "readings")
    assert [s["change"] for s in state.schemas] == [
        "initial", "added humidity BIGINT; celsius DOUBLE -> VARCHAR"
    ]  # fmt: skip
    con = project.lake.connect()
    values = con.execute(
        "SELECT celsius::VARCHAR FROM read_parquet(?, union_by_name = true) ORDER BY sensor_id",
        [project.lake.raw_glob_uri("iot", "readings")],
    ).fetchall()
    assert [v[0] for v in values] == ["4.5", "5.0", "warm", "6.1", "6.3"]  # nothing truncated


def test_freeze_rejects_the_batch_with_the_change_named(tmp_path: Path) -> None:
    project = _setup(tmp_path, "freeze")
    for _ in range(2):  # and again on the next run: it is not marked as landed
        report = run_ingest(project.lake, project.spec.sources, project.base_dir)
        [failure] = report.failures()
        assert "source 'iot', table 'readings'" in failure and "readings_2.csv" in failure
        assert "added humidity BIGINT; celsius DOUBLE -> VARCHAR" in failure
        assert "schema_policy is freeze" in failure
        assert raw_rows(project, "iot", "readings") == 2
    state = load_state(project.lake.storage, "iot", "readings")
    assert len(state.batches) == 1 and state.pending is None


@pytest.mark.parametrize("lake_kind", ["local", "s3"])
def test_quarantine_sets_the_whole_batch_aside(
    lake_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    project = _setup(tmp_path, "quarantine")
    if lake_kind == "s3":  # the same, with the lake on S3
        bucket, env = request.getfixturevalue("s3_bucket")
        spec = yaml.safe_load((tmp_path / "lakehouse.yml").read_text())
        spec["lake"]["url"] = f"s3://{bucket}/drift"
        (tmp_path / "lakehouse.yml").write_text(yaml.safe_dump(spec))
        (tmp_path / "in" / "readings_2.csv").rename(tmp_path / "readings_2.csv")
        project = load_project(tmp_path / "lakehouse.yml", env=env)
        assert run_ingest(project.lake, project.spec.sources, project.base_dir).rows == 2
        (tmp_path / "readings_2.csv").rename(tmp_path / "in" / "readings_2.csv")
    report = run_ingest(project.lake, project.spec.sources, project.base_dir)
    assert report.ok and report.rows == 0
    assert report.tables[0].quarantined == 3
    assert raw_rows(project, "iot", "readings") == 2
    state = load_state(project.lake.storage, "iot", "readings")
    diverted = state.batches[-1]
    assert diverted.diverted == "schema changed: added humidity BIGINT; celsius DOUBLE -> VARCHAR"
    assert diverted.key.startswith("quarantine/iot/readings/batches/load_date=")
    assert project.lake.storage.exists(diverted.key)
    assert len(state.schemas) == 1  # the accepted schema did not change
    again = run_ingest(project.lake, project.spec.sources, project.base_dir)
    assert again.ok and again.rows == 0 and again.tables[0].batches == []
