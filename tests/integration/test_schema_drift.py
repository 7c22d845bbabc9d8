"""Schema drift between batches, under each policy; the lake keeps the history."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ingest import run_ingest
from pipeline.config import load_project
from tests.integration.helpers import raw_rows, table_state


def project_env(project) -> dict[str, str]:  # type: ignore[no-untyped-def]
    s3 = project.lake.settings.s3
    return {} if s3 is None else s3.dbt_env()


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
    state = table_state(project, "iot", "readings")
    assert [b.schema_change for b in state.batches] == [
        "initial", "added humidity BIGINT; celsius DOUBLE -> VARCHAR"
    ]  # fmt: skip
    con = project.lake.connect()
    values = con.execute(
        "SELECT celsius, humidity FROM lake.iot.readings ORDER BY sensor_id"
    ).fetchall()
    # the column became text (DuckLake widens only in place: the table was rewritten),
    # and nothing was truncated
    assert values == [("4.5", None), ("5.0", None), ("warm", 40), ("6.1", 41), ("6.3", 39)]


def test_evolve_casts_a_narrower_batch_into_the_table(tmp_path: Path) -> None:
    project = _setup(tmp_path, "evolve")
    (tmp_path / "in" / "readings_2.csv").write_text("sensor_id,celsius\n3,6\n")  # INTEGER
    report = run_ingest(project.lake, project.spec.sources, project.base_dir)
    assert report.ok and report.rows == 1
    con = project.lake.connect()
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE lake.iot.readings)")
                 .fetchall())  # fmt: skip
    assert types["celsius"] == "DOUBLE"
    assert con.execute("SELECT celsius FROM lake.iot.readings WHERE sensor_id = 3").fetchone() == (
        6.0,
    )


def test_freeze_rejects_the_batch_with_the_change_named(tmp_path: Path) -> None:
    project = _setup(tmp_path, "freeze")
    for _ in range(2):  # and again on the next run: it is not marked as landed
        report = run_ingest(project.lake, project.spec.sources, project.base_dir)
        [failure] = report.failures()
        assert "source 'iot', table 'readings'" in failure and "readings_2.csv" in failure
        assert "added humidity BIGINT; celsius DOUBLE -> VARCHAR" in failure
        assert "schema_policy is freeze" in failure
        assert raw_rows(project, "iot", "readings") == 2
    state = table_state(project, "iot", "readings")
    assert len(state.batches) == 1


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
    state = table_state(project, "iot", "readings")
    diverted = state.batches[-1]
    assert diverted.reason == "schema changed: added humidity BIGINT; celsius DOUBLE -> VARCHAR"
    assert not diverted.in_raw_zone and diverted.quarantined == 3
    from lake import layout
    from tests.integration.helpers import lake_sql

    rows = lake_sql(project, f"SELECT celsius, humidity FROM lake.{layout.QUARANTINE}."
                    f"{diverted.quarantine_table} ORDER BY sensor_id")  # fmt: skip
    assert rows == [("warm", 40), ("6.1", 41), ("6.3", 39)]  # kept whole, its own columns
    assert state.columns == [["sensor_id", "BIGINT"], ["celsius", "DOUBLE"]]  # unchanged
    again = run_ingest(project.lake, project.spec.sources, project.base_dir)
    assert again.ok and again.rows == 0 and again.tables[0].batches == []  # not diverted again

    # the policy changes to evolve: release re-checks the batch and admits it
    from pipeline.quarantine import release

    spec = yaml.safe_load((tmp_path / "lakehouse.yml").read_text())
    with pytest.raises(Exception, match="schema_policy is quarantine"):
        release(project, diverted.load_id)
    spec["sources"][0]["schema_policy"] = "evolve"
    (tmp_path / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    project = load_project(tmp_path / "lakehouse.yml", env=dict(project_env(project)))
    release(project, diverted.load_id)
    assert raw_rows(project, "iot", "readings") == 5
    assert table_state(project, "iot", "readings").batches[-1].in_raw_zone


def test_a_schema_quarantine_makes_the_ingest_exit_3(tmp_path: Path) -> None:
    project = _setup(tmp_path, "quarantine")
    from tests.integration.helpers import cli

    result = cli(project, "ingest")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "1 batch(es) quarantined: see `lakehouse quarantine list`" in result.stderr


def test_an_empty_first_file_does_not_fix_the_table_s_types(tmp_path: Path) -> None:
    """A header-only first file used to create the table with every column as text, and
    under `freeze` that guess was the schema forever."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("id,name\n")
    spec = {"lake": {"url": "lake"},
            "sources": [{"name": "f", "kind": "csv", "schema_policy": "freeze",
                         "tables": [{"name": "x", "path": "in/*.csv"}]}]}  # fmt: skip
    (tmp_path / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    project = load_project(tmp_path / "lakehouse.yml", env={})
    assert run_ingest(project.lake, project.spec.sources, project.base_dir).ok
    (tmp_path / "in" / "b.csv").write_text("id,name\n1,a\n2,b\n")
    report = run_ingest(project.lake, project.spec.sources, project.base_dir)
    assert report.ok and report.rows == 2, report.failures()
    con = project.lake.connect()
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE lake.f.x)").fetchall())
    assert types["id"] == "BIGINT"
