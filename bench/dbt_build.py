"""dbt_build / dbt_build_s3 / dbt_incremental: `dbt build` over the example shop at tens
of millions of order lines.

Input: the shop generated at `BENCH_DBT_SCALE` (default 400: 8M orders, 24M order lines,
800k customers, 1.2M reviews, 3.9M clickstream events), landed by `lakehouse ingest` into
a local lake or SeaweedFS S3 (not timed).

- dbt_build(_s3): value = `dbt build --full-refresh` (every model and data test; unit
  tests excluded, they do not touch the data); reference = the SQL dbt compiled for that
  build, run in its order in one DuckDB session (`CREATE OR REPLACE TABLE/VIEW ... AS`
  for each model, a count over each test's query). Median of `BENCH_REPEAT`, alternating.
- dbt_incremental: one full build, then a day of business is ingested
  (`day_of_business`: 1% new orders with their lines, 1% of orders shipped, 1% of
  customers moved, 0.01% of orders cancelled, 1% new reviews and clickstream events);
  value = `dbt build` from the state before that day; reference = `dbt build
  --full-refresh` on the same data. Per-model seconds of both are in the results file.
peak_rss_mb is dbt's process (DuckDB runs inside it).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import DATA, Measurement, measure, median_run, write_result
from lake.duck import connect
from lake.layout import BUILD
from pipeline.config import Project, load_project
from pipeline.transform import run_dbt

SCALE = float(os.environ.get("BENCH_DBT_SCALE", "400"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
REPO = Path(__file__).resolve().parents[1]
REF_SCHEMA = "_bench_reference"
FULL = ["build", "--full-refresh", "--exclude-resource-type", "unit_test"]
INCREMENTAL = ["build", "--exclude-resource-type", "unit_test"]


def shop_sources(scale: float) -> Path:
    """The generated shop, once per scale (bench/data/shop_s<scale>)."""
    from examples.shop.shop_data import generate

    out = DATA / f"shop_s{scale:g}"
    if not (out / "counts.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        counts = generate(out, scale=scale)
        (out / "counts.json").write_text(json.dumps(counts))
    return out


def make_shop_project(workdir: Path, scale: float, lake_url: str | None = None) -> Project:
    """The committed lakehouse.yml on a copy of the generated shop; the vendor API pages
    at its largest with no client rate limit (the demo's limit would make this a wait)."""
    workdir = workdir.resolve()
    sources = workdir / "sources"
    shutil.copytree(shop_sources(scale), sources)
    spec = yaml.safe_load(
        (REPO / "lakehouse.yml").read_text().replace("data/sources", str(sources))
    )
    for source in spec["sources"]:
        if source["kind"] == "http":
            source["http"].pop("rate_limit_per_s", None)
            source["tables"][0]["params"]["per_page"] = 500
    spec["lake"] = {"url": lake_url or str(workdir / "lake")}
    spec["warehouse"] = {
        "dir": str(workdir / "warehouse"),
        "dbt_project_dir": str(REPO / "dbt_project"),
        "expectations_dir": str(REPO / "expectations"),
    }
    (workdir / "lakehouse.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return load_project(workdir / "lakehouse.yml")


def ingest(project: Project) -> None:
    from examples.shop.shop_api import ShopApi
    from pipeline.run import run_pipeline

    t0 = time.monotonic()
    with ShopApi(project.base_dir / "sources" / "vendor" / "reviews.json") as api:
        os.environ.update(api.env())
        project = load_project(project.path)
        run_pipeline(project, stages=("ingest",))
    print(f"   ingested in {time.monotonic() - t0:.0f}s", flush=True)


def dbt(project_file: str, args: list[str], **_: Any) -> dict[str, Any]:
    """The measured call: dbt in its own process (as `lakehouse build` runs it)."""
    project = load_project(Path(project_file))
    result = run_dbt(project, args)
    assert result.ok, result.failures
    dbt_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"dbt_peak_rss_mb": round(dbt_peak, 1), "models": result.models,
            "tests": result.tests_passed, **_where_the_time_went(project)}  # fmt: skip


def _state_files(project: Project) -> list[Path]:
    catalog = project.lake.settings.catalog_path
    assert catalog is not None, "the incremental benchmark needs a SQLite catalog"
    return [project.build_db, catalog]


_COMPANIONS = ("", "-wal", ".wal")  # a SQLite catalog's write-ahead log holds commits too


def save_state(project: Project, folder: Path) -> None:
    """Copy the build database and the catalog (no process has them open here)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in _state_files(project):
        for extra in _COMPANIONS:
            if Path(f"{path}{extra}").exists():
                shutil.copy(f"{path}{extra}", folder / f"{path.name}{extra}")


def restore_state(project: Project, folder: Path) -> None:
    for path in _state_files(project):
        for extra in (*_COMPANIONS, "-shm"):
            Path(f"{path}{extra}").unlink(missing_ok=True)
            if (folder / f"{path.name}{extra}").exists():
                shutil.copy(folder / f"{path.name}{extra}", f"{path}{extra}")


def _last_build(project: Project) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """What dbt's last command ran (run_results) and its nodes (manifest)."""
    target = project.warehouse_dir / "dbt" / "target"
    results = json.loads((target / "run_results.json").read_text())["results"]
    return results, json.loads((target / "manifest.json").read_text())["nodes"]


def _where_the_time_went(project: Project) -> dict[str, Any]:
    """Seconds of DuckDB work (summed over dbt's threads) by kind of node, and by model."""
    results, nodes = _last_build(project)
    spent = {"incremental_models_s": 0.0, "other_models_s": 0.0, "tests_s": 0.0}
    for r in results:
        node = nodes[r["unique_id"]]
        if node["resource_type"] != "model":
            kind = "tests_s"
        elif node["config"]["materialized"] == "incremental":
            kind = "incremental_models_s"
        else:
            kind = "other_models_s"
        spent[kind] += r["execution_time"]
    models = {nodes[r["unique_id"]]["name"]: round(r["execution_time"], 2) for r in results
              if nodes[r["unique_id"]]["resource_type"] == "model"}  # fmt: skip
    return {**{k: round(v, 2) for k, v in spent.items()}, "models_s": models}


def compiled_sql(project_file: str, **_: Any) -> dict[str, Any]:
    """The reference: what the last build compiled, run in its order in one session."""
    project = load_project(Path(project_file))
    results, manifest = _last_build(project)
    steps = sorted(results, key=lambda r: min(t["started_at"] for t in r["timing"]))
    ref_dir = project.warehouse_dir / "reference"
    shutil.rmtree(ref_dir, ignore_errors=True)
    ref_dir.mkdir()
    con = connect(project.lake.settings, ref_dir / project.build_db.name)  # + the S3 secret
    con.execute("SET TimeZone = 'UTC'")  # as profiles.yml sets it
    for schema in ("staging", "intermediate"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    # the marts go to the lake as dbt's do (DuckLake tables), in a schema of their own
    con.execute(f"CREATE SCHEMA IF NOT EXISTS lake.{REF_SCHEMA}")
    for step in steps:
        node = manifest[step["unique_id"]]
        sql = step["compiled_code"].replace(f'"lake"."{BUILD}".', f'"lake"."{REF_SCHEMA}".')
        if node["resource_type"] == "model":
            kind = "VIEW" if node["config"]["materialized"] == "view" else "TABLE"
            where = (f'lake."{REF_SCHEMA}"' if node["database"] == "lake"
                     else f'"{node["schema"]}"')  # fmt: skip
            con.execute(f'CREATE OR REPLACE {kind} {where}."{node["alias"]}" AS {sql}')
        else:
            con.execute(f"SELECT count(*) FROM ({sql}) AS test").fetchall()
    con.close()
    return {"statements": len(steps)}


def _dbt_measurement(m: Measurement) -> Measurement:
    """Peak RSS of the dbt process, not of the Python that waited for it."""
    return Measurement(m.seconds, float(m.extra.pop("dbt_peak_rss_mb")), m.extra)


def _build_vs_compiled(name: str, project: Project, env: dict[str, str]) -> dict[str, Any]:
    args = {"project_file": str(project.path)}
    vals, refs = [], []
    for _ in range(REPEAT):
        vals.append(_dbt_measurement(measure("bench.dbt_build:dbt", {**args, "args": FULL}, env)))
        refs.append(measure("bench.dbt_build:compiled_sql", args, env))
    return write_result(name, median_run(vals), median_run(refs), scale=SCALE,
                        order_lines=_order_lines(project))  # fmt: skip


def _order_lines(project: Project) -> int:
    con = project.lake.connect(lake_read_only=True)
    row = con.execute(f"SELECT count(*) FROM lake.{BUILD}.fct_order_items").fetchone()
    con.close()
    return int(row[0]) if row else 0


def run_local() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-dbt-", dir=DATA) as workdir:
        project = make_shop_project(Path(workdir), SCALE)
        ingest(project)
        return _build_vs_compiled("dbt_build", project, {})


def run_s3() -> dict[str, Any]:
    from tests.seaweedfs import s3_client, seaweedfs_server

    with (
        tempfile.TemporaryDirectory(prefix="bench-dbt-s3-", dir=DATA) as workdir,
        seaweedfs_server(Path(workdir) / "seaweedfs") as env,
    ):
        s3_client(env).create_bucket(Bucket="bench")
        os.environ.update(env)
        project = make_shop_project(Path(workdir), SCALE, lake_url="s3://bench/shop")
        ingest(project)
        return _build_vs_compiled("dbt_build_s3", project, env)


def day_of_business(project: Project) -> dict[str, int]:
    """One day at 1% of the shop: new orders, shipments, moved customers, new reviews and
    clicks, and a few cancellations (see `examples.shop.shop_data.next_day`)."""
    from examples.shop.shop_day import next_day

    counts = json.loads((project.base_dir / "sources" / "counts.json").read_text())
    return next_day(project.base_dir / "sources" / "shop.sqlite", fraction=0.01,
                    cancels=max(1, counts["orders"] // 10_000),
                    reviews=max(1, counts["reviews"] // 100),
                    clicks=max(1, counts["clickstream"] // 100))  # fmt: skip


def run_incremental() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-dbt-inc-", dir=DATA) as workdir:
        project = make_shop_project(Path(workdir), SCALE)
        ingest(project)
        args = {"project_file": str(project.path)}
        measure("bench.dbt_build:dbt", {**args, "args": FULL})
        day = day_of_business(project)
        ingest(project)
        # the day landed, not built yet: the build database and the lake catalog (its
        # data files never change; those written later are only unreferenced then)
        before = Path(workdir) / "before-the-build"
        save_state(project, before)
        vals, refs = [], []
        for _ in range(REPEAT):
            restore_state(project, before)
            vals.append(
                _dbt_measurement(measure("bench.dbt_build:dbt", {**args, "args": INCREMENTAL}))
            )
            restore_state(project, before)
            refs.append(_dbt_measurement(measure("bench.dbt_build:dbt", {**args, "args": FULL})))
        reference = median_run(refs)
        return write_result("dbt_incremental", median_run(vals), reference, scale=SCALE,
                            new_day=day, order_lines=_order_lines(project),
                            reference_models_s=reference.extra.get("models_s"))  # fmt: skip
