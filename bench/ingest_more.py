"""ingest_jsonl, ingest_postgres, ingest_memory.

- ingest_jsonl: TPC-H lineitem as JSON Lines; lakehouse ingest vs bare DuckDB
  `COPY (SELECT * FROM read_json(...)) TO parquet`.
- ingest_postgres: lineitem in a real PostgreSQL (started here); lakehouse full dump vs
  bare DuckDB `COPY (SELECT * FROM pg.public.lineitem) TO parquet` through the same
  postgres extension.
- ingest_memory: a CSV several times the memory budget; peak RSS of ingest at a small
  and a large input (ratio = large / small), both under the same budget.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from bench.common import (
    Measurement,
    bare_copy,
    lineitem_csv,
    lineitem_jsonl,
    make_project,
    measure,
    median_run,
    run_project_ingest,
    write_result,
)
from lake.duck import connect

REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))


def setup_ingest(kind: str, spec: dict[str, Any], workdir: str, **_: Any) -> Any:
    return make_project(workdir, kind, spec["source"], memory_mb=int(spec.get("memory_mb", 1024)))


def ingest(project: Any, **_: Any) -> dict[str, Any]:
    return run_project_ingest(project)


def bare(source_sql: str, workdir: str, attach: str | None = None, **_: Any) -> dict[str, Any]:
    target = Path(tempfile.mkdtemp(dir=workdir)) / "bare.parquet"
    return bare_copy(source_sql, str(target), attach)


def _compare(name: str, kind: str, source: dict[str, Any], bare_sql: str, rows: int,
             attach: str | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as workdir:
        refs, vals = [], []
        for _ in range(REPEAT):
            refs.append(
                measure(
                    "bench.ingest_more:bare",
                    {"source_sql": bare_sql, "workdir": workdir, "attach": attach},
                )
            )
            vals.append(
                measure(
                    "bench.ingest_more:ingest",
                    {"kind": kind, "spec": {"source": source}, "workdir": workdir},
                )
            )
    ref, val = median_run(refs), median_run(vals)
    assert val.extra["rows"] == rows, (val.extra, rows)
    return write_result(
        name,
        val,
        ref,
        rows=rows,
        rows_per_s=round(rows / val.seconds),
        reference_rows_per_s=round(rows / ref.seconds),
        runs=REPEAT,
        **extra,
    )


def run_jsonl() -> dict[str, Any]:
    sf = float(os.environ.get("BENCH_SF", "1"))
    path, rows = lineitem_jsonl(sf)
    return _compare(
        "ingest_jsonl", "json", {"tables": [{"name": "lineitem", "path": str(path)}]},
        f"SELECT * FROM read_json('{path}', format = 'newline_delimited')", rows,
        scale_factor=sf, jsonl_mb=round(path.stat().st_size / 2**20),
    )  # fmt: skip


def run_postgres() -> dict[str, Any]:
    from tests.postgres import postgres_server

    sf = float(os.environ.get("BENCH_SF", "1"))
    csv, rows = lineitem_csv(sf)
    with postgres_server() as dsn:
        con = connect()
        con.execute(f"ATTACH '{dsn}' AS pg (TYPE postgres)")
        con.execute(f"CREATE TABLE pg.public.lineitem AS SELECT * FROM read_csv('{csv}')")
        con.close()
        attach = f"ATTACH '{dsn}' AS pg (TYPE postgres, READ_ONLY)"
        return _compare(
            "ingest_postgres", "postgres",
            {"database": {"url": dsn}, "tables": [{"name": "lineitem"}]},
            "SELECT * FROM pg.public.lineitem", rows, attach=attach, scale_factor=sf,
        )  # fmt: skip


def run_memory() -> dict[str, Any]:
    """Peak RSS landing a CSV 2x and ~8x the memory budget, same budget."""
    budget = int(os.environ.get("BENCH_MEMORY_MB", "256"))
    small, small_rows = lineitem_csv(float(os.environ.get("BENCH_MEMORY_SMALL_SF", "0.5")))
    large, large_rows = lineitem_csv(float(os.environ.get("BENCH_MEMORY_LARGE_SF", "2")))
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as workdir:
        for label, path in (("small", small), ("large", large)):
            results[label] = measure("bench.ingest_more:ingest", {
                "kind": "csv", "workdir": workdir,
                "spec": {"memory_mb": budget,
                         "source": {"tables": [{"name": "lineitem", "path": str(path)}]}},
            })  # fmt: skip
    value = Measurement(results["large"].peak_rss_mb, results["large"].peak_rss_mb, {})
    reference = Measurement(results["small"].peak_rss_mb, results["small"].peak_rss_mb, {})
    return write_result(
        "ingest_memory", value, reference, unit="MB",
        memory_budget_mb=budget,
        small_csv_mb=round(small.stat().st_size / 2**20), small_rows=small_rows,
        large_csv_mb=round(large.stat().st_size / 2**20), large_rows=large_rows,
        large_seconds=round(results["large"].seconds, 2),
        small_seconds=round(results["small"].seconds, 2),
    )  # fmt: skip


def setup_rerun(csv: str, workdir: str, **_: Any) -> Any:
    """A project that has already landed the file once."""
    project = setup_ingest("csv", {"source": {"tables": [{"name": "lineitem", "path": csv}]}},
                           workdir)  # fmt: skip
    ingest(project)
    return project


def rerun(project: Any, **_: Any) -> dict[str, Any]:
    result = ingest(project)
    assert result["rows"] == 0, result  # nothing new: nothing lands
    return result


def run_rerun() -> dict[str, Any]:
    """ingest_rerun: a re-run with no new data vs the first run (same file, same lake)."""
    sf = float(os.environ.get("BENCH_SF", "1"))
    csv, rows = lineitem_csv(sf)
    with tempfile.TemporaryDirectory(prefix="bench-rerun-") as workdir:
        first = median_run([measure("bench.ingest_more:ingest", {
            "kind": "csv", "workdir": workdir,
            "spec": {"source": {"tables": [{"name": "lineitem", "path": str(csv)}]}},
        }) for _ in range(REPEAT)])  # fmt: skip
        args = {"csv": str(csv), "workdir": workdir}
        again = median_run([measure("bench.ingest_more:rerun", args) for _ in range(REPEAT)])
    return write_result("ingest_rerun", again, first, rows_first_run=rows, scale_factor=sf)
