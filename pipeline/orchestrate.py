"""Dagster, for teams that have an orchestrator (`pip install 'lakehouse[dagster]'`):

    dagster dev -m pipeline.orchestrate       # from the folder of lakehouse.yml

- one asset per raw table (`[source, table]`, the keys dagster-dbt gives dbt sources), its
  materialisation an ingest of that table, with the raw gate as its asset check;
- the dbt models as assets through dagster-dbt (`@dbt_assets` on the project's manifest),
  built by `lakehouse build`'s own code (the lake's settings, `dbt deps`, retries);
- `publish` as an asset downstream of every mart: the mart gate (its asset check) at the
  build's snapshot, then one publish commit.

This is how ingest scales out: Dagster runs the raw assets on many workers, and the lake's
catalog and table locks arbitrate between them. The dbt and publish steps hold the lake's
run lock, so they never overlap a `lakehouse run` or `lakehouse schedule`.
"""

import json
import logging
from collections.abc import Iterator
from graphlib import TopologicalSorter
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets

from lake import Holder
from pipeline.config import Project, load_project
from pipeline.errors import StageFailed

log = logging.getLogger("lakehouse.dagster")
RUN_LOCK_WAIT_S = 3600
PUBLISH = dg.AssetKey(["marts", "publish"])


def _manifest(project: Project) -> dict[str, Any]:
    """The dbt project's manifest, parsed now if missing or older than the project."""
    from pipeline.transform import run_dbt, source_files

    path = project.dbt_target / "manifest.json"
    newest = max((p.stat().st_mtime for p in source_files(project.dbt_project_dir)), default=0)
    if not path.exists() or path.stat().st_mtime < newest:
        result = run_dbt(project, ["parse"])
        if not result.ok:
            raise StageFailed("dagster", "dbt parse: " + "; ".join(result.failures))
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def _raw_asset(project: Project, source: str, table: str) -> dg.AssetsDefinition:
    key = dg.AssetKey([source, table])
    check = dg.AssetCheckSpec(
        "raw_gate",
        asset=key,
        description="The raw gate's suites on the table's new batches (a failing batch is "
        "quarantined).",
    )

    @dg.asset(
        key=key,
        group_name=source,
        check_specs=[check],
        kinds={"duckdb"},
        description=f"Raw table lake.{source}.{table}: new input landed as batches.",
    )
    def raw(context: dg.AssetExecutionContext) -> Iterator[Any]:
        from ingest import run_ingest
        from pipeline.gates import check_raw

        report = run_ingest(project.lake, project.spec.sources, project.base_dir,
                            project.spec.ingest, only=[f"{source}.{table}"],
                            run_id=context.run.run_id)  # fmt: skip
        if not report.ok:
            raise dg.Failure("; ".join(report.failures()))
        [t] = report.tables
        yield dg.MaterializeResult(asset_key=key, metadata={
            "batches": len(t.batches), "rows": t.rows, "quarantined": t.quarantined})  # fmt: skip
        gate = check_raw(project, run_id=context.run.run_id, tables={f"{source}.{table}"})
        yield dg.AssetCheckResult(
            asset_key=key, check_name="raw_gate", passed=gate.ok,
            metadata={"expectations": len(gate.results),
                      "failed": [r.describe() for r in gate.blocking][:20]},
        )  # fmt: skip

    return raw


def _dbt_asset(project: Project, manifest: dict[str, Any]) -> dg.AssetsDefinition:
    translator = DagsterDbtTranslator(settings=DagsterDbtTranslatorSettings(
        enable_asset_checks=False))  # dbt's tests run inside `dbt build` and fail it  # fmt: skip
    nodes = {uid: node for uid, node in manifest["nodes"].items()
             if node["resource_type"] in ("model", "seed", "snapshot")}  # fmt: skip
    by_key = {translator.get_asset_key(node): uid for uid, node in nodes.items()}
    # Dagster takes a multi-asset's results in dependency order only
    order = list(TopologicalSorter({uid: [d for d in node["depends_on"]["nodes"] if d in nodes]
                                    for uid, node in nodes.items()}).static_order())  # fmt: skip

    @dbt_assets(manifest=manifest, dagster_dbt_translator=translator)
    def models(context: dg.AssetExecutionContext) -> Iterator[Any]:
        from pipeline.transform import build

        chosen = {by_key[k]: k for k in context.selected_asset_keys if k in by_key}
        selected = sorted(nodes[uid]["name"] for uid in chosen)
        with project.lake.run_lock(Holder(f"dagster-{context.run.run_id}"), RUN_LOCK_WAIT_S):
            result = build(project, select=" ".join(selected))
        if not result.ok:
            raise dg.Failure("dbt: " + "; ".join(result.failures))
        for uid in order:
            if uid in chosen:
                yield dg.MaterializeResult(asset_key=chosen[uid])

    return models


def _publish_asset(project: Project, marts: list[dg.AssetKey]) -> dg.AssetsDefinition:
    check = dg.AssetCheckSpec("mart_gate", asset=PUBLISH, description="The mart gate's "
                              "suites on the built marts, at the build's snapshot.")  # fmt: skip

    @dg.asset(key=PUBLISH, deps=marts, check_specs=[check], group_name="marts",
              description="Every mart published at once, in one lake commit.")  # fmt: skip
    def publish(context: dg.AssetExecutionContext) -> Iterator[Any]:
        from pipeline.gates import check_marts
        from pipeline.serve import build_snapshot
        from pipeline.serve import publish as publish_marts

        with project.lake.run_lock(Holder(f"dagster-{context.run.run_id}"), RUN_LOCK_WAIT_S):
            snapshot = build_snapshot(project)
            gate = check_marts(project, snapshot)
            yield dg.AssetCheckResult(asset_key=PUBLISH, check_name="mart_gate",
                                      passed=gate.ok,
                                      metadata={"expectations": len(gate.results)})  # fmt: skip
            if not gate.ok:
                raise dg.Failure("mart gate failed: " + "; ".join(
                    r.describe() for r in gate.blocking[:10]))  # fmt: skip
            done = publish_marts(project, context.run.run_id, snapshot=snapshot)  # gated above
        yield dg.MaterializeResult(asset_key=PUBLISH, metadata={
            "marts": done.marts, "snapshot": done.build_snapshot})  # fmt: skip

    return publish


def build_definitions(project: Project) -> dg.Definitions:
    from ingest.select import resolve_tables

    manifest = _manifest(project)
    raw = []
    for src in project.spec.sources:
        try:
            tables = resolve_tables(project.lake, src, project.base_dir)
        except Exception as exc:  # the database is down: its declared tables still show
            log.warning("%s: cannot list its tables (%s): declared tables only", src.name, exc)
            tables = list(src.tables)
        raw += [_raw_asset(project, src.name, t.name) for t in tables]
    marts = [DagsterDbtTranslator().get_asset_key(n) for n in manifest["nodes"].values()
             if n["resource_type"] == "model" and n.get("schema") == "_build"]  # fmt: skip
    return dg.Definitions(
        assets=[*raw, _dbt_asset(project, manifest), _publish_asset(project, marts)]
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev -m pipeline.orchestrate` loads: the project found from the
    current folder (or `LAKEHOUSE_PROJECT`)."""
    return build_definitions(load_project())
