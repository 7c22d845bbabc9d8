"""`cdc`: change data capture from PostgreSQL into the lake.

An update-heavy workload on a real PostgreSQL 15: BENCH_CDC_CHANGES changes (default 1M:
60% updates, 25% inserts, 15% deletes, in transactions of 1 to 1,000 rows) on a table of
BENCH_CDC_ROWS rows. Three measures:
- sustained: the changes wait in the slot (`changes_issued` counts the rows the
  statements named, `changes_landed` the row changes PostgreSQL made: an id drawn twice
  or already deleted changes nothing), then one `lakehouse cdc` drain lands them all
  (in a fresh process): `value` is changes/s, `peak_rss_mb` that process's;
- one transaction of BENCH_CDC_BIG_TX rows (default 1M): `big_transaction_peak_rss_mb`;
- lag: a `lakehouse cdc --follow` process runs while the workload commits about
  BENCH_CDC_RATE changes/s for BENCH_CDC_FOLLOW_S seconds; per change, the lake's commit
  time minus the source's commit time gives `p50_lag_s` and `p95_lag_s`.
`reference`: DuckDB's postgres extension dumping the same table to Parquet, as rows/s.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Measurement, measure, write_result

CHANGES = int(os.environ.get("BENCH_CDC_CHANGES", "1000000"))
ROWS = int(os.environ.get("BENCH_CDC_ROWS", "200000"))
RATE = int(os.environ.get("BENCH_CDC_RATE", "5000"))
FOLLOW_S = float(os.environ.get("BENCH_CDC_FOLLOW_S", "20"))
BIG_TX = int(os.environ.get("BENCH_CDC_BIG_TX", "1000000"))


def _workload(dsn: str, changes: int, seed: int, rate: float | None = None) -> int:
    """Commit about `changes` changes in transactions of 1 to 1,000 rows; `rate`: pace
    them to about that many changes/s. Returns the changes committed."""
    import psycopg

    rng = random.Random(seed)
    done = 0
    started = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as pg:
        row = pg.execute("SELECT coalesce(max(id), 0) FROM orders").fetchone()
        next_id = int(row[0] if row else 0) + 1
        while done < changes:
            size = min(rng.randint(1, 1000), changes - done)
            updates, inserts = int(size * 0.6), int(size * 0.25)
            deletes = size - updates - inserts
            with pg.transaction():
                ids = [rng.randint(1, next_id) for _ in range(updates + deletes)]
                if updates:
                    pg.execute("UPDATE orders SET status = 'paid', amount = amount + 1, "
                               "updated_at = clock_timestamp() WHERE id = ANY(%s)",
                               [ids[:updates]])  # fmt: skip
                if inserts:
                    pg.execute("INSERT INTO orders SELECT g, 'new', g %% 1000 + 0.99, "
                               "md5(g::text), clock_timestamp() FROM generate_series(%s, %s) g",
                               [next_id, next_id + inserts - 1])  # fmt: skip
                    next_id += inserts
                if deletes:
                    pg.execute("DELETE FROM orders WHERE id = ANY(%s)", [ids[updates:]])
            done += size  # (an id drawn twice, or already deleted, changes no row)
            if rate:
                ahead = done / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    return done


def _project(root: Path, dsn: str) -> Path:
    import yaml

    spec = {
        "lake": {"url": str(root / "lake")},
        "warehouse": {"dir": str(root / "warehouse")},
        "sources": [{
            "name": "shop", "kind": "postgres",
            "database": {"url": dsn, "cdc": {"poll_s": 0.2}},
            "tables": [{"name": "orders", "primary_key": "id", "cdc": True}],
        }],
    }  # fmt: skip
    path = root / "lakehouse.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


def setup_drain(path: str, **_: Any) -> Any:
    from pipeline.config import load_project

    return load_project(Path(path))


def drain(project: Any, **_: Any) -> dict[str, Any]:
    from ingest.cdc.run import run_cdc

    landed = run_cdc(project.lake, project.spec.sources, project.base_dir)
    return {"changes": sum(landed.values())}


def dump(dsn: str, out: str, **_: Any) -> dict[str, Any]:
    from lake.duck import connect

    con = connect()
    con.execute(f"ATTACH '{dsn}' AS pg (TYPE postgres, READ_ONLY)")
    row = con.execute(f"COPY (SELECT * FROM pg.public.orders) TO '{out}' (FORMAT parquet)")
    n = row.fetchone() if row else None
    return {"rows": int(n[0]) if n else 0}


def _caught_up(dsn: str, timeout_s: float) -> None:
    """Wait until the slot has confirmed everything written so far."""
    import psycopg

    deadline = time.monotonic() + timeout_s
    with psycopg.connect(dsn, autocommit=True) as pg:
        row = pg.execute("SELECT pg_current_wal_flush_lsn()").fetchone()
        target = row[0] if row else None
        while time.monotonic() < deadline:
            done = pg.execute(
                "SELECT confirmed_flush_lsn >= %s FROM pg_replication_slots "
                "WHERE slot_name = 'lakehouse_shop'",
                [target],
            ).fetchone()
            if done and done[0]:
                return
            time.sleep(0.2)
    raise RuntimeError(f"the follower did not catch up in {timeout_s:g} s")


def _lags(project_path: Path, since_lsn: int) -> list[float]:
    from pipeline.config import load_project

    project = load_project(project_path)
    con = project.lake.connect()
    try:
        rows = con.execute(
            "SELECT epoch(b.committed_at::TIMESTAMPTZ) - epoch(c._commit_ts) "
            "FROM lake.shop.orders c JOIN lake._lakehouse.batches b ON b.load_id = c._load_id "
            f"WHERE c._lsn > {since_lsn} AND c._op <> 'snapshot'"
        ).fetchall()
    finally:
        con.close()
    return sorted(float(r[0]) for r in rows)


def run() -> dict[str, Any]:
    import psycopg

    from tests.postgres import postgres_server

    with postgres_server() as dsn, tempfile.TemporaryDirectory(prefix="bench-cdc-") as tmp:
        root = Path(tmp)
        with psycopg.connect(dsn, autocommit=True) as pg:
            pg.execute("CREATE TABLE orders (id bigint PRIMARY KEY, status text, "
                       "amount numeric(12, 2), note text, updated_at timestamptz)")  # fmt: skip
            pg.execute("INSERT INTO orders SELECT g, 'placed', g % 1000 + 0.5, md5(g::text), "
                       f"now() FROM generate_series(1, {ROWS}) g")  # fmt: skip
        path = _project(root, dsn)
        first = measure("bench.cdc:drain", {"path": str(path)})  # the snapshot
        committed = _workload(dsn, CHANGES, seed=1)
        sustained = measure("bench.cdc:drain", {"path": str(path)})
        landed = sustained.extra["changes"]
        reference = measure("bench.cdc:dump", {"dsn": dsn, "out": str(root / "dump.parquet")})

        # lag while following a steady workload
        with psycopg.connect(dsn, autocommit=True) as pg:
            row = pg.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        high, low = (row[0] if row else "0/0").split("/")
        since = (int(high, 16) << 32) | int(low, 16)
        follower = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "--project", str(path), "cdc", "--follow"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(3)  # started, caught up
        followed = _workload(dsn, int(RATE * FOLLOW_S), seed=2, rate=RATE)
        _caught_up(dsn, timeout_s=120)  # every change landed, however late: all are counted
        follower.send_signal(signal.SIGTERM)
        follower.wait(timeout=120)
        lags = _lags(path, since)

        # one transaction of BIG_TX rows: spooled to disk, landed whole, in bounded memory
        with psycopg.connect(dsn, autocommit=True) as pg, pg.transaction():
            pg.execute("UPDATE orders SET status = 'audited' WHERE id IN "
                       f"(SELECT id FROM orders LIMIT {BIG_TX})")  # fmt: skip
            if BIG_TX > ROWS:
                last = 10_000_000 + BIG_TX - ROWS
                pg.execute("INSERT INTO orders SELECT g, 'bulk', 1, md5(g::text), now() "
                           f"FROM generate_series(10000000, {last}) g")  # fmt: skip
        big = measure("bench.cdc:drain", {"path": str(path)})

    per_s = landed / sustained.seconds
    dump_per_s = reference.extra["rows"] / reference.seconds
    value = Measurement(per_s, sustained.peak_rss_mb, {})
    ref = Measurement(dump_per_s, reference.peak_rss_mb, {})
    result = write_result(
        "cdc", value, ref, unit="changes/s",
        changes_issued=committed, changes_landed=landed,
        drain_seconds=round(sustained.seconds, 2), snapshot_rows=first.extra["changes"],
        snapshot_seconds=round(first.seconds, 2),
        reference_unit="rows/s (postgres extension: full dump of the table to Parquet)",
        big_transaction_changes=big.extra["changes"],
        big_transaction_seconds=round(big.seconds, 2),
        big_transaction_peak_rss_mb=round(big.peak_rss_mb, 1),
        followed_changes=followed, followed_rate=RATE, lag_samples=len(lags),
        p50_lag_s=round(lags[len(lags) // 2], 3) if lags else None,
        p95_lag_s=round(lags[int(len(lags) * 0.95)], 3) if lags else None,
    )  # fmt: skip
    return result
