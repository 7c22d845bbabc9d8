"""Measuring in fresh processes, and writing results."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lake.duck import connect

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
DATA = ROOT / "data"
DATA.mkdir(exist_ok=True)  # generated inputs and scratch lakes (not committed)


@dataclass
class Measurement:
    seconds: float
    peak_rss_mb: float
    extra: dict[str, Any]


def measure(target: str, args: dict[str, Any], env: dict[str, str] | None = None) -> Measurement:
    """Run `module:function(**args)` in a fresh Python process; time only the call."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench._child", target, json.dumps(args)],
        env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"{target} failed:\n{proc.stderr[-3000:]}")
    body = json.loads(proc.stdout.strip().splitlines()[-1])
    return Measurement(body["seconds"], body["peak_rss_mb"], body.get("extra") or {})


def median_run(runs: list[Measurement]) -> Measurement:
    """The run with the median time (its peak RSS and extras with it)."""
    return sorted(runs, key=lambda m: m.seconds)[len(runs) // 2]


def best_of(
    target: str, args: dict[str, Any], repeat: int, env: dict[str, str] | None = None
) -> Measurement:
    """The median time of `repeat` runs (peak RSS: the largest seen)."""
    runs = [measure(target, args, env) for _ in range(repeat)]
    median = statistics.median(r.seconds for r in runs)
    return Measurement(median, max(r.peak_rss_mb for r in runs), runs[0].extra)


def write_result(
    name: str, value: Measurement, reference: Measurement, unit: str = "s", **extra: Any
) -> dict[str, Any]:
    result = {
        "name": name,
        "value": round(value.seconds, 3),
        "unit": unit,
        "reference": round(reference.seconds, 3),
        "ratio": round(value.seconds / reference.seconds, 3),
        "peak_rss_mb": round(value.peak_rss_mb, 1),
        "reference_peak_rss_mb": round(reference.peak_rss_mb, 1),
        **value.extra,
        **extra,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return result


def lineitem_csv(scale_factor: float) -> tuple[Path, int]:
    """TPC-H lineitem as CSV, generated once with DuckDB's tpch extension."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"lineitem_sf{scale_factor:g}.csv"
    con = connect()
    if not path.exists():
        con.execute(f"CALL dbgen(sf = {scale_factor})")
        tmp = path.with_suffix(".tmp")
        con.execute(f"COPY lineitem TO '{tmp}' (HEADER)")
        tmp.rename(path)
    row = con.execute(f"SELECT count(*) FROM read_csv('{path}')").fetchone()
    con.close()
    assert row is not None
    return path, int(row[0])


def make_project(
    workdir: str,
    kind: str,
    source: dict[str, Any],
    lake_url: str | None = None,
    memory_mb: int = 1024,
) -> Any:
    """A one-source project in a fresh folder under `workdir`; its own lake (a prefix of
    `lake_url` when given, for S3)."""
    import tempfile

    import yaml

    from pipeline.config import load_project

    root = Path(tempfile.mkdtemp(dir=workdir))
    spec = {
        "lake": {"url": f"{lake_url}/{root.name}" if lake_url else str(root / "lake")},
        "warehouse": {"dir": str(root / "warehouse")},
        "ingest": {"workers": 1, "memory_limit_mb": memory_mb},
        "sources": [{"name": "bench", "kind": kind, **source}],
    }
    (root / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    return load_project(root / "lakehouse.yml")


def run_project_ingest(project: Any) -> dict[str, Any]:
    from ingest import run_ingest

    report = run_ingest(project.lake, project.spec.sources, project.base_dir, project.spec.ingest)
    assert report.ok, report.failures()
    return {"rows": report.rows}


def lineitem_jsonl(scale_factor: float) -> tuple[Path, int]:
    """TPC-H lineitem as JSON Lines, from the CSV."""
    csv, rows = lineitem_csv(scale_factor)
    path = DATA / f"lineitem_sf{scale_factor:g}.jsonl"
    if not path.exists():
        con = connect()
        tmp = path.with_suffix(".tmp")
        con.execute(f"COPY (SELECT * FROM read_csv('{csv}')) TO '{tmp}' (FORMAT json)")
        con.close()
        tmp.rename(path)
    return path, rows


def bare_copy(
    source_sql: str, target: str, setup_sql: str | None = None, memory_mb: int = 1024
) -> dict[str, Any]:
    """The reference: bare DuckDB doing `COPY (...) TO parquet` with the session settings
    and COPY options ingest uses (memory limit of `make_project`'s default,
    `preserve_insertion_order = false`, zstd, the same row groups): they change DuckDB's
    COPY operator, so both sides get them. `setup_sql`: an S3 secret or an ATTACH."""
    con = connect(memory_limit=f"{memory_mb}MB")
    con.execute("SET preserve_insertion_order = false")
    if setup_sql:
        con.execute(setup_sql)
    con.execute(
        f"COPY ({source_sql}) TO '{target}' "
        "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
    )
    con.close()
    return {}


def in_processes(target: Any, args: list[tuple], out_dir: Path, tag: str
                 ) -> tuple[list[dict[str, Any]], float, float]:  # fmt: skip
    """Run `target(*args[i], out)` in one spawned process per args, all at once; each writes
    its result as JSON to `out`. Returns (the results, start time, end time)."""
    import multiprocessing
    import time

    ctx = multiprocessing.get_context("spawn")
    outs = [str(out_dir / f"{tag}-{i}.json") for i in range(len(args))]
    t0 = time.time()
    procs = [ctx.Process(target=target, args=(*a, out)) for a, out in zip(args, outs, strict=True)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return [json.loads(Path(o).read_text()) for o in outs], t0, time.time()


class PeakRss:
    """The largest resident set a process reaches while this watches (MB), sampled."""

    def __init__(self, pid: int, every_s: float = 0.1) -> None:
        import threading

        import psutil

        self.mb = 0.0
        self._stop = threading.Event()
        proc = psutil.Process(pid)

        def watch() -> None:
            while not self._stop.is_set():
                try:
                    self.mb = max(self.mb, proc.memory_info().rss / 1e6)
                except psutil.Error:
                    return
                self._stop.wait(every_s)

        threading.Thread(target=watch, daemon=True).start()

    def stop(self) -> float:
        self._stop.set()
        return self.mb
