"""The Dagster definitions load, and materialise a source end to end in process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, ProjectFactory
from tests.integration.helpers import published_run, raw_rows

dg = pytest.importorskip("dagster")  # the optional extra: `lakehouse[dagster]`


def test_dagster_materialises_a_source_its_models_and_publish(
    make_project: ProjectFactory,
) -> None:
    from pipeline.orchestrate import PUBLISH, build_definitions

    project = make_project(built=True)  # yesterday's full run; today Dagster runs iot alone
    readings = raw_rows(project, "iot", "sensor_readings")
    (project.base_dir / "sources" / "iot" / "sensor_readings_2026_04.csv").write_text(
        "warehouse_id,sensor_id,reading_ts,temperature_c\n1,cold-1-1,2026-04-01 00:00:00,4.2\n"
    )

    defs = build_definitions(project)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"shop/orders", "iot/sensor_readings", "_build/fct_orders", "marts/publish"} <= keys
    iot = dg.AssetKey(["iot", "sensor_readings"])
    # the dbt models read the raw assets: dagster-dbt's source keys are the raw tables'
    assert iot in graph.get(dg.AssetKey(["staging", "stg_iot__sensor_readings"])).parent_keys

    selection = dg.AssetSelection.assets(iot).downstream()
    result = dg.materialize(
        defs.assets,  # type: ignore[arg-type]
        selection=selection,
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert {iot, dg.AssetKey(["staging", "stg_iot__sensor_readings"]), PUBLISH} <= materialized
    assert dg.AssetKey(["shop", "orders"]) not in materialized  # not downstream of iot
    checks = {e.asset_check_key.name: e.passed
              for e in result.get_asset_check_evaluations()}  # fmt: skip
    assert checks == {"raw_gate": True, "mart_gate": True}
    assert raw_rows(project, "iot", "sensor_readings") == readings + 1
    assert published_run(project) == result.run_id


def test_dagster_dev_loads_the_project_it_is_pointed_at(make_project: ProjectFactory) -> None:
    """What `dagster dev -m pipeline.orchestrate` loads: the project of LAKEHOUSE_PROJECT."""
    project = make_project()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate",
         "-m", "pipeline.orchestrate"],
        cwd=REPO, env={**os.environ, "LAKEHOUSE_PROJECT": str(project.path)},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "All code locations passed validation" in proc.stdout + proc.stderr
