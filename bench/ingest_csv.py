"""ingest_csv / ingest_csv_s3: landing a large CSV vs bare DuckDB COPY CSV -> Parquet.

Input: TPC-H lineitem (SF1 = 6M rows, ~750 MB CSV; `BENCH_SF` to change). value = time
of `run_ingest` (listing, content hash, COPY with lineage columns, commit); reference =
bare DuckDB `COPY (SELECT * FROM read_csv(...)) TO ... (FORMAT parquet, COMPRESSION zstd)`
to the same place (local folder or SeaweedFS S3). Median of 3, alternating.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench.common import (
    Measurement,
    bare_copy,
    lineitem_csv,
    make_project,
    measure,
    median_run,
    run_project_ingest,
    write_result,
)
from lake import S3Settings

REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))


def setup_lakehouse(csv: str, lake_url: str, workdir: str, **_: Any) -> Any:
    source = {"tables": [{"name": "lineitem", "path": csv}]}
    return make_project(workdir, "csv", source, lake_url if lake_url.startswith("s3://") else None)


def lakehouse(project: Any, **_: Any) -> dict[str, Any]:
    return run_project_ingest(project)


def bare(csv: str, lake_url: str, workdir: str, **_: Any) -> dict[str, Any]:
    if lake_url.startswith("s3://"):
        target = f"{lake_url}/bare-{uuid.uuid4().hex[:8]}.parquet"
        secret = S3Settings.from_env().duckdb_secret_sql()
    else:
        target, secret = str(Path(workdir) / f"bare-{uuid.uuid4().hex[:8]}.parquet"), None
    return bare_copy(f"SELECT * FROM read_csv('{csv}')", target, secret)


def _run(name: str, lake_url: str | None, env: dict[str, str]) -> dict[str, Any]:
    sf = float(os.environ.get("BENCH_SF", "1"))
    csv, rows = lineitem_csv(sf)
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as workdir:
        args = {"csv": str(csv), "lake_url": lake_url or "local", "workdir": workdir}
        refs: list[Measurement] = []
        vals: list[Measurement] = []
        for _ in range(REPEAT):
            refs.append(measure("bench.ingest_csv:bare", args, env))
            vals.append(measure("bench.ingest_csv:lakehouse", args, env))
    ref, val = median_run(refs), median_run(vals)
    assert val.extra["rows"] == rows, (val.extra, rows)
    return write_result(
        name, val, ref, rows=rows, rows_per_s=round(rows / val.seconds),
        reference_rows_per_s=round(rows / ref.seconds), csv_mb=round(csv.stat().st_size / 2**20),
        scale_factor=sf, runs=REPEAT,
    )  # fmt: skip


def run_local() -> dict[str, Any]:
    return _run("ingest_csv", None, {})


def run_s3() -> dict[str, Any]:
    from tests.seaweedfs import s3_client, seaweedfs_server

    with (
        tempfile.TemporaryDirectory(prefix="bench-seaweedfs-") as root,
        seaweedfs_server(Path(root)) as env,
    ):
        s3_client(env).create_bucket(Bucket="bench")
        return _run("ingest_csv_s3", "s3://bench", env)
