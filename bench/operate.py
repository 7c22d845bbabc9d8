"""Benchmarks of running it every day: how fast the CLI starts, and what a run with
nothing new costs.

Both use the example shop at `BENCH_OPERATE_SCALE` (default 1, what `make demo` runs) on
a local lake, through the real `lakehouse` command in fresh processes, wall time.

- `cli_start`: value: `lakehouse query "select 1"` on the published demo (`query_s`; also
  `help_s` for `lakehouse --help`), medians of `BENCH_REPEAT`; reference: `python -c pass`.
  Target: each <= 1 s (an absolute target: the ratio only says how far from bare Python).
- `run_noop`: value: a `lakehouse run` with nothing new, after the first (the median of
  `BENCH_REPEAT` such runs, each in `noop_s`); reference: the first run, which lands,
  gates, builds and publishes everything. Target: ratio <= 0.05.
- `run_incremental`: at `BENCH_DBT_SCALE` (default 400: 8M orders, 24M lines): value: the
  whole `lakehouse run` (ingest, raw gate, build, mart gate, publish) after a day of
  business (`day_of_business`); reference: the first run, on the data before that day.
  One of each (the first cannot be repeated on the same lake); each stage's seconds are in
  `stages_s` / `reference_stages_s`. Target: ratio <= 0.10.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import DATA, Measurement, measure, write_result

SCALE = float(os.environ.get("BENCH_OPERATE_SCALE", "1"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")


def _wall(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one command in a fresh process; it must succeed."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    peak = 0.0
    ps = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss / 2**20)
        except psutil.Error:
            break
        time.sleep(0.01)
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{args} exited {proc.returncode}:\n{out[-2000:]}{err[-2000:]}")
    return seconds, peak


def _median(args: list[str], env: dict[str, str]) -> Measurement:
    runs = [_wall(args, env) for _ in range(REPEAT)]
    return Measurement(statistics.median(r[0] for r in runs), max(r[1] for r in runs), {})


@functools.cache
def _demo() -> tuple[Path, dict[str, str], tuple[float, float], list[tuple[float, float]]]:
    """A published demo shop (kept for the process), with the first run's wall time and
    peak RSS, and those of `REPEAT` runs after it with nothing new."""
    from bench.dbt_build import make_shop_project
    from examples.shop.shop_api import ShopApi

    DATA.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-operate-", dir=DATA))
    atexit.register(shutil.rmtree, workdir, True)
    project = make_shop_project(workdir, SCALE)
    api = ShopApi(project.base_dir / "sources" / "vendor" / "reviews.json").__enter__()
    atexit.register(api.__exit__, None, None, None)
    env = {**os.environ, **api.env()}
    run = [LAKEHOUSE, "--project", str(project.path), "run"]
    first = _wall(run, env)
    noops = [_wall(run, env) for _ in range(REPEAT)]
    return project.path, env, first, noops


def run_cli_start() -> dict[str, Any]:
    project_file, env, _, _ = _demo()
    bare = _median([sys.executable, "-c", "pass"], env)
    helped = _median([LAKEHOUSE, "--help"], env)
    queried = _median([LAKEHOUSE, "--project", str(project_file), "query", "select 1"], env)
    return write_result("cli_start", queried, bare, scale=SCALE, help_s=round(helped.seconds, 3),
                        query_s=round(queried.seconds, 3), target_s=1.0)  # fmt: skip


def run_noop() -> dict[str, Any]:
    _, _, first, noops = _demo()
    value = Measurement(statistics.median(s for s, _ in noops), max(m for _, m in noops), {})
    return write_result("run_noop", value, Measurement(first[0], first[1], {}), scale=SCALE,
                        noop_s=[round(s, 3) for s, _ in noops])  # fmt: skip


def whole_run(project_file: str, **_: Any) -> dict[str, Any]:
    """The measured call: every stage of `lakehouse run`, in the child process."""
    from pipeline.config import load_project
    from pipeline.run import run_pipeline

    record = run_pipeline(load_project(Path(project_file)))
    assert record.status == "passed", (record.status, record.error)
    return {"stages_s": {s.name: round(s.seconds, 2) for s in record.stages}}


def run_incremental() -> dict[str, Any]:
    from bench.dbt_build import SCALE as DBT_SCALE
    from bench.dbt_build import day_of_business, make_shop_project
    from examples.shop.shop_api import ShopApi

    with tempfile.TemporaryDirectory(prefix="bench-run-inc-", dir=DATA) as workdir:
        project = make_shop_project(Path(workdir), DBT_SCALE)
        with ShopApi(project.base_dir / "sources" / "vendor" / "reviews.json") as api:
            env, args = api.env(), {"project_file": str(project.path)}
            first = measure("bench.operate:whole_run", args, env)
            day = day_of_business(project)
            second = measure("bench.operate:whole_run", args, env)
        return write_result("run_incremental", second, first, scale=DBT_SCALE, new_day=day,
                            reference_stages_s=first.extra["stages_s"])  # fmt: skip
