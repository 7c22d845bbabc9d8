"""`batch_commit`: does a commit get slower as a table's batches pile up?

Lands N batches of 1,000 rows on one table through the ingest path (write the batch's
Parquet file, then commit it with its log row in one DuckLake transaction) and times each
commit. `value`: the median commit of the last 100 (with N batches behind it);
`reference`: the median of the first 100 (an empty table); `p50_ms` / `p95_ms` of the
last 100. The state is derived from the batch log, never rewritten, so the ratio should
stay near 1.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Measurement, write_result

BATCHES = int(os.environ.get("BENCH_BATCHES", "10000"))
ROWS = 1000


def land_batches(lake_dir: Path, batches: int, rows: int = ROWS, offset: int = 0,
                 source: str = "bench", table: str = "events",
                 catalog: str | None = None, lock_each: bool = True,
                 shared: Any = None) -> list[float]:  # fmt: skip
    """Land `batches` batches as a streaming writer does, taking the table's lock for each
    one (so that two writers interleave), or once for all of them as an ingest run does
    (`lock_each=False`); returns each commit's seconds. `shared`: a connection of this
    process's lake to take a cursor of, as an ingest worker thread does."""
    from ingest.land import write_batch
    from ingest.sources import Opened
    from lake import Lake, LakeSettings, NewBatch, commit_batch, layout, load_state, new_load_id

    lake = Lake(LakeSettings.resolve(str(lake_dir), lake_dir.parent, env={}, catalog=catalog))
    con = lake.connect() if shared is None else shared.cursor()
    timings = []
    held = None if lock_each else lake.table_lock(source, table)
    if held is not None:
        held.__enter__()
    state = load_state(con, source, table)
    for n in range(offset, offset + batches):
        with lake.table_lock(source, table) if lock_each else contextlib.nullcontext():
            if lock_each:  # another writer may have committed since
                state = load_state(con, source, table)
            fingerprint = f"{source}.{table}:{n}"
            if state.last_by_input.get(f"batch {n}"):
                continue  # landed already (a re-run)
            load_id = new_load_id(fingerprint)
            key = layout.batch_file_key(source, table, load_id)
            lake.storage.ensure_parent(key)
            rel = con.sql(f"SELECT {n} AS batch, range AS id, 'event ' || range AS body "
                          f"FROM range({rows})")  # fmt: skip
            written = write_batch(con, Opened(rel), lake.uri(key), load_id, f"batch {n}")
            t0 = time.perf_counter()
            commit_batch(con, lake.storage, state, NewBatch(
                load_id, source, table, f"batch {n}", fingerprint, f"batch {n}", key,
                written.rows, [["batch", "INTEGER"], ["id", "BIGINT"], ["body", "VARCHAR"]],
            ))  # fmt: skip
            timings.append(time.perf_counter() - t0)
    if held is not None:
        held.__exit__(None, None, None)
    con.close()
    return timings


def run() -> dict[str, Any]:
    import psutil

    with tempfile.TemporaryDirectory(prefix="bench-commit-") as tmp:
        timings = land_batches(Path(tmp) / "lake", BATCHES, lock_each=False)
    first, last = timings[:100], timings[-100:]
    rss = psutil.Process().memory_info().rss / 2**20
    last_ms = sorted(t * 1000 for t in last)
    return write_result(
        "batch_commit",
        Measurement(statistics.median(last), rss, {}),
        Measurement(statistics.median(first), rss, {}),
        unit="s per commit",
        batches=BATCHES,
        rows_per_batch=ROWS,
        p50_ms=round(statistics.median(last_ms), 2),
        p95_ms=round(last_ms[94], 2),
        first_p50_ms=round(statistics.median(first) * 1000, 2),
    )
