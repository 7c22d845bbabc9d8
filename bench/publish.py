"""`publish`: publishing the shop's marts after a small change costs catalog rows, not data.

Input: the shop at `BENCH_PUBLISH_SCALE` (default 400, as the issue asks: 8M orders, 24M
order lines), ingested and built, published once; then a small change (`next_day` with
0.1% new orders) ingested and built incrementally (none of this timed).

- value: `lakehouse publish`'s work without its gate (which `gate` measures): one
  DuckLake commit that points every `marts` view at the new build's snapshot.
- reference: a full copy of the same marts as of that snapshot into a fresh DuckDB file
  (what publishing by file swap costs: every row of every mart, changed or not).
Both run in fresh processes with the same DuckDB settings (`lake.duck.connect`); median
of `BENCH_REPEAT`, alternating.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import DATA, Measurement, measure, median_run, write_result

SCALE = float(os.environ.get("BENCH_PUBLISH_SCALE", "400"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))


def _project(project_file: str, **_: Any) -> Any:
    """Not timed (see `bench._child`): imports and the project file."""
    import pipeline.serve  # noqa: F401  (imported before the clock starts)
    from pipeline.config import load_project

    return load_project(Path(project_file))


setup_publish = setup_full_copy = _project


def publish(project: Any, snapshot: int, **_: Any) -> dict[str, Any]:
    """The measured call: open the lake, publish the marts at `snapshot` (the gate is not
    part of it: the `gate` benchmark measures that)."""
    from pipeline.serve import publish as do_publish

    done = do_publish(project, "bench", snapshot=snapshot)
    return {"marts": len(done.marts)}


def full_copy(project: Any, snapshot: int, out: str, **_: Any) -> dict[str, Any]:
    """The reference: open the lake, copy every mart as of the same snapshot into a new
    DuckDB file."""
    from lake.duck import quote_ident
    from lake.publish import built_marts, mart_at

    Path(out).unlink(missing_ok=True)
    con = project.lake.connect(lake_read_only=True)
    con.execute(f"ATTACH '{out}' AS copy")
    marts = built_marts(con, snapshot)
    rows = 0
    for mart in marts:
        con.execute(
            f"CREATE TABLE copy.{quote_ident(mart)} AS SELECT * FROM "
            f"{mart_at(mart, snapshot, 'lake')}"
        )
        found = con.execute(f"SELECT count(*) FROM copy.{quote_ident(mart)}").fetchone()
        rows += int(found[0]) if found else 0
    con.execute("DETACH copy")
    con.close()
    return {"marts": len(marts), "rows_copied": rows}


def run() -> dict[str, Any]:
    from bench.dbt_build import INCREMENTAL, ingest, make_shop_project
    from examples.shop.shop_day import next_day
    from pipeline.serve import build_snapshot
    from pipeline.transform import run_dbt

    DATA.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-publish-", dir=DATA) as workdir:
        project = make_shop_project(Path(workdir), SCALE)
        t0 = time.monotonic()
        ingest(project)
        assert run_dbt(project, INCREMENTAL).ok
        args = {"project_file": str(project.path), "snapshot": build_snapshot(project)}
        measure("bench.publish:publish", args)  # the first set, published
        day = next_day(project.base_dir / "sources" / "shop.sqlite", fraction=0.001)
        ingest(project)
        built = run_dbt(project, INCREMENTAL)
        assert built.ok, built.failures
        print(f"   set up in {time.monotonic() - t0:.0f}s", flush=True)
        args["snapshot"] = build_snapshot(project)
        out = str(Path(workdir) / "copy.duckdb")
        vals: list[Measurement] = []
        refs: list[Measurement] = []
        for _ in range(REPEAT):
            vals.append(measure("bench.publish:publish", args))
            refs.append(measure("bench.publish:full_copy", {**args, "out": out}))
        ref = median_run(refs)
        return write_result("publish", median_run(vals), ref, scale=SCALE, new_day=day,
                            rows_in_marts=ref.extra.get("rows_copied"))  # fmt: skip
