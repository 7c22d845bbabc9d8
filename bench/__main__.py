"""`python -m bench [name ...]`: run the named benchmarks, or all of them."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from bench import (
    batch_commit,
    cdc,
    collector,
    dbt_build,
    gate,
    ingest_csv,
    ingest_more,
    operate,
    publish,
    realtime,
    serving,
)

BENCHMARKS: dict[str, Callable[[], dict[str, Any]]] = {
    "ingest_csv": ingest_csv.run_local,
    "ingest_csv_s3": ingest_csv.run_s3,
    "ingest_jsonl": ingest_more.run_jsonl,
    "ingest_postgres": ingest_more.run_postgres,
    "ingest_memory": ingest_more.run_memory,
    "ingest_rerun": ingest_more.run_rerun,
    "batch_commit": batch_commit.run,
    "gate": gate.run,
    "publish": publish.run,
    "dbt_build": dbt_build.run_local,
    "dbt_build_s3": dbt_build.run_s3,
    "dbt_incremental": dbt_build.run_incremental,
    "cli_start": operate.run_cli_start,
    "run_noop": operate.run_noop,
    "run_incremental": operate.run_incremental,
    "cdc": cdc.run,
    "collector": collector.run,
    "event_to_mart": realtime.run_event_to_mart,
    "mqtt": realtime.run_mqtt,
    "serving": serving.run_serving,
    "publish_postgres": serving.run_publish_postgres,
}


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in names or list(BENCHMARKS):
        t0 = time.monotonic()
        print(f"== {name}", flush=True)
        BENCHMARKS[name]()
        print(f"== {name}: {time.monotonic() - t0:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
