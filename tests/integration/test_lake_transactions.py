"""The lake's transactions under pressure: writers side by side, clocks that lie, kills in
the middle of a quarantine, a PostgreSQL catalog."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from bench.batch_commit import land_batches
from examples.shop.shop_day import next_day
from lake import Lake, LakeSettings, NewBatch, commit_batch, layout, load_state, new_load_id
from pipeline.config import load_project
from pipeline.errors import StageFailed
from pipeline.run import run_pipeline
from pipeline.transform import build
from tests.integration.helpers import cli, lake_sql, published_marts, shop_db, table_state

ROWS = 200


def _writer(lake_dir: Path, offset: int, batches: int, catalog: str | None) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        from pathlib import Path
        from bench.batch_commit import land_batches
        land_batches(Path({str(lake_dir)!r}), {batches}, rows={ROWS}, offset={offset},
                     catalog={catalog!r})
    """)
    return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)


def test_two_writers_on_one_table_land_every_row_exactly_once(tmp_path: Path, catalog) -> None:
    lake_dir = tmp_path / "lake"
    Lake(LakeSettings.resolve(str(lake_dir), tmp_path, env={}, catalog=catalog)).connect().close()
    # two processes, 50 batches each, interleaving their commits on one table; the second
    # also re-lands the first one's last 10 inputs, which must not double
    writers = [_writer(lake_dir, 0, 50, catalog), _writer(lake_dir, 40, 60, catalog)]
    for w in writers:
        _, err = w.communicate(timeout=600)
        assert w.returncode == 0, err[-3000:]
    lake = Lake(LakeSettings.resolve(str(lake_dir), tmp_path, env={}, catalog=catalog))
    con = lake.connect()
    rows = con.execute(
        "SELECT count(*), count(DISTINCT (batch, id)), count(DISTINCT batch), "
        "sum(hash(batch, id, body)) FROM lake.bench.events"
    ).fetchone()
    expected = con.execute(
        f"SELECT count(*), count(*), count(DISTINCT b), sum(hash(b, r, 'event ' || r)) "
        f"FROM range(100) t(b), range({ROWS}) s(r)"
    ).fetchone()
    assert rows == expected  # every row once: same count and order-independent checksum
    state = load_state(con, "bench", "events")
    assert len(state.batches) == 100 and len({b.load_id for b in state.batches}) == 100


def test_threads_of_one_process_commit_to_many_tables_at_once(tmp_path: Path) -> None:
    """Ingest workers share one DuckDB database; their reads of the batch log and their
    commits touch the DuckLake catalog at once (this crashed CI with a segfault)."""
    lake = Lake(LakeSettings.resolve(str(tmp_path / "lake"), tmp_path, env={}))
    shared = lake.connect()
    tables = 8
    with ThreadPoolExecutor(max_workers=tables) as pool:
        jobs = [pool.submit(land_batches, tmp_path / "lake", 25, rows=50, table=f"t{n}",
                            shared=shared) for n in range(tables)]  # fmt: skip
        assert [len(j.result()) for j in jobs] == [25] * tables
    union = " UNION ALL ".join(
        f"SELECT 't{n}' AS table_name, * FROM lake.bench.t{n}" for n in range(tables)
    )
    counts = shared.execute(
        f"SELECT table_name, count(*), count(DISTINCT batch) FROM ({union}) "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert counts == [(f"t{n}", 25 * 50, 25) for n in range(tables)]


def test_two_ingest_runs_of_the_same_input_land_it_once(tmp_path: Path) -> None:
    src = tmp_path / "in" / "events.csv"
    src.parent.mkdir()
    src.write_text("id,v\n" + "".join(f"{i},{i * 3}\n" for i in range(200_000)))
    spec = {"lake": {"url": str(tmp_path / "lake")},
            "sources": [{"name": "ev", "kind": "csv",
                         "tables": [{"name": "events", "path": str(src)}]}]}  # fmt: skip
    (tmp_path / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    project = load_project(tmp_path / "lakehouse.yml", env={})
    runs = [
        subprocess.Popen([sys.executable, "-m", "pipeline.cli", "--project", str(project.path),
                          "ingest"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    for r in runs:
        _, err = r.communicate(timeout=300)
        assert r.returncode == 0, err
    assert lake_sql(project, "SELECT count(*), count(DISTINCT id) FROM lake.ev.events") == [
        (200_000, 200_000)
    ]
    assert len(table_state(project, "ev", "events").batches) == 1


def test_incremental_models_follow_commit_order_not_the_clock(make_project) -> None:
    """A batch whose host clock is a day behind still reaches the incremental models."""
    project = make_project()
    run_pipeline(project, stages=("ingest",))
    assert build(project).ok
    con = project.lake.connect()
    state = load_state(con, "shop", "orders")
    load_id = new_load_id("late")
    key = layout.batch_file_key("shop", "orders", load_id)
    project.lake.storage.ensure_parent(key)
    con.execute(
        f"COPY (SELECT * REPLACE (order_id + 5000000 AS order_id, '{load_id}' AS _load_id, "
        "_ingested_at - INTERVAL 1 DAY AS _ingested_at) FROM lake.shop.orders LIMIT 3) "
        f"TO '{project.lake.uri(key)}'"
    )
    columns = [c for c in state.columns or []]
    commit_batch(con, project.lake.storage, state, NewBatch(
        load_id, "shop", "orders", "late", "late", "a host with a slow clock", key, 3, columns,
    ))  # fmt: skip
    con.close()
    assert build(project).ok
    found = lake_sql(project, "SELECT 1")  # the lake is still readable
    assert found == [(1,)]
    import duckdb

    db = duckdb.connect(str(project.build_db), read_only=True)
    try:
        late = db.execute(
            "SELECT count(*) FROM staging.stg_shop__orders WHERE order_id > 5000000"
        ).fetchone()
    finally:
        db.close()
    assert late == (3,)
    marts = lake_sql(project, "SELECT count(*) FROM lake._build.fct_orders WHERE order_id > 5e6")
    assert marts == [(3,)]


def test_a_kill_inside_a_quarantine_leaves_the_batch_whole_and_the_next_gate_finishes(
    make_project,
) -> None:
    project = make_project()
    run_pipeline(project, stages=("ingest", "check_raw"))
    shop_db(project, "INSERT INTO orders (order_id, customer_id, status, ordered_at, currency, "
            "shipping_amount, updated_at) VALUES (990001, 5, 'lost', '2026-04-01 10:00:00', "
            "'EUR', 4.99, '2026-06-01 00:00:00')")  # fmt: skip
    run_pipeline(project, stages=("ingest",))
    rows_before = lake_sql(project, "SELECT count(*) FROM lake.shop.orders")
    crashed = cli(project, "check", "raw", env={"LAKEHOUSE_FAILPOINT": "quarantine_before_commit"})
    assert crashed.returncode == 86
    # nothing half-done: the batch is still whole in the raw table
    assert lake_sql(project, "SELECT count(*) FROM lake.shop.orders") == rows_before
    bad = table_state(project, "shop", "orders").batches[-1]
    assert bad.in_raw_zone
    again = cli(project, "check", "raw")
    assert again.returncode == 1 and "expect_column_values_to_be_in_set" in again.stderr
    assert "Traceback" not in again.stderr
    bad = table_state(project, "shop", "orders").batches[-1]
    assert not bad.in_raw_zone and bad.gate == "failed"
    assert lake_sql(project, "SELECT count(*) FROM lake.shop.orders WHERE order_id = 990001") == [
        (0,)
    ]


def test_publish_needs_the_mart_gate_unless_forced(make_project) -> None:
    project = make_project(built=True)  # as the session's first run left it
    published = published_marts(project)
    shop_db(project, "INSERT INTO order_items VALUES (99999999, 1, 1, 1, 10.00, 500.00)")
    run_pipeline(project, stages=("ingest", "check_raw", "build"))
    refused = cli(project, "publish")
    assert refused.returncode == 1 and "marts gate failed" in refused.stderr
    assert published_marts(project) == published
    forced = cli(project, "publish", "--force")
    assert forced.returncode == 0 and "WITHOUT the mart gate" in forced.stderr
    assert published_marts(project) != published
    assert "FORCED past the mart gate" in cli(project, "status").stdout


def test_a_kill_inside_publish_leaves_the_published_set_whole(make_project) -> None:
    project = make_project(built=True)  # as the session's first run left it
    published = published_marts(project)
    next_day(project.base_dir / "sources" / "shop.sqlite", fraction=0.05)
    run_pipeline(project, stages=("ingest", "check_raw", "build"))
    # killed after every view is re-pointed and the publication recorded, before COMMIT
    crashed = cli(project, "publish", env={"LAKEHOUSE_FAILPOINT": "publish_before_commit"})
    assert crashed.returncode == 86, crashed.stderr
    assert published_marts(project) == published  # readers still see the whole old set
    done = cli(project, "publish")
    assert done.returncode == 0, done.stderr
    _, marts = published_marts(project)
    assert marts.keys() == published[1].keys() and marts != published[1]
    assert marts["fct_orders"][0] > published[1]["fct_orders"][0]


def test_catalog_settings(tmp_path: Path) -> None:
    s = LakeSettings.resolve("lake", tmp_path, env={})
    assert s.catalog == f"sqlite:{tmp_path / 'lake' / 'catalog.sqlite'}"
    assert s.data_path == f"{tmp_path / 'lake'}/tables/"
    pg = LakeSettings.resolve("lake", tmp_path, env={"LAKEHOUSE_CATALOG": "postgresql://u@h/db"})
    assert pg.ducklake_uri == "ducklake:postgres:postgresql://u@h/db"
    s3 = LakeSettings.resolve("s3://bucket/shop", tmp_path, env={})
    assert s3.catalog == f"sqlite:{tmp_path / 'data' / 'catalogs' / 'bucket_shop.sqlite'}"
    assert os.path.basename(s3.data_path.rstrip("/")) == "tables"


def test_ingest_while_the_raw_gate_runs(make_project) -> None:
    """A gate and an ingest of the same table at once: the gate judges the batches it saw,
    quarantines the bad one under the table's lock, and the batches landed between its
    verdicts and its quarantine wait for the next gate, whole; once the source is fixed,
    every good row is in the raw table and the bad one is not."""
    project = make_project()
    run_pipeline(project, stages=("ingest", "check_raw"))
    insert = (
        "INSERT INTO orders (order_id, customer_id, status, ordered_at, currency, "
        "shipping_amount, updated_at) VALUES (?, 5, ?, '2026-04-01 10:00:00', 'EUR', 4.99, ?)"
    )
    shop_db(project, insert, (990101, "lost", "2026-06-01 00:00:00"))  # a bad batch
    run_pipeline(project, stages=("ingest",))
    # the gate stops between its verdicts and the quarantine (a test hook) while good
    # batches land: the order is fixed, not left to how fast each process happens to be
    go = project.base_dir / "gate-go"
    gate = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "--project", str(project.path), "check", "raw"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "LAKEHOUSE_PAUSE": f"raw_gate_before_quarantine:{go}"},
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not Path(f"{go}.reached").exists():
        assert gate.poll() is None, gate.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the gate never reached its verdicts"
        time.sleep(0.1)
    for n in range(3):  # good batches, landing while the gate runs
        shop_db(project, insert, (990200 + n, "placed", f"2026-06-02 00:00:0{n}"))
        run_pipeline(project, stages=("ingest",))
    go.touch()
    _, err = gate.communicate(timeout=300)
    assert gate.returncode == 1 and "expect_column_values_to_be_in_set" in err, err[-2000:]
    assert "Traceback" not in err
    state = table_state(project, "shop", "orders")
    bad = next(b for b in state.batches if not b.in_raw_zone)
    assert bad.gate == "failed"
    later = [b for b in state.batches if b.load_id > bad.load_id]
    assert len(later) == 3 and all(b.gate is None for b in later)  # the next gate's
    # they landed whole: the quarantine took the bad batch's rows, none of theirs
    per_batch = lake_sql(project, "SELECT _load_id, count(*) FROM lake.shop.orders WHERE "
                         f"_load_id IN {tuple(b.load_id for b in later)} GROUP BY 1")  # fmt: skip
    assert dict(per_batch) == {b.load_id: b.landed_rows for b in later}
    # the first of them re-read the bad row through the cursor's 10-minute lag (it landed
    # while the bad batch was still in the raw table): the next gate has it, not staging
    carried = lake_sql(project, "SELECT _load_id FROM lake.shop.orders WHERE status = 'lost' "
                       "AND order_id = 990101")  # fmt: skip
    assert carried == [(later[0].load_id,)]
    shop_db(project, "UPDATE orders SET status = 'placed', updated_at = '2026-06-03 00:00:00' "
            "WHERE order_id = 990101")  # the source is fixed  # fmt: skip
    with pytest.raises(StageFailed, match="expect_column_values_to_be_in_set"):
        run_pipeline(project, stages=("ingest", "check_raw"))
    state = table_state(project, "shop", "orders")
    assert state.batch(later[0].load_id).status == "quarantined"
    assert all(state.batch(b.load_id).gate == "passed" for b in later[1:])
    record = run_pipeline(project, stages=("ingest", "check_raw"))
    assert record.status == "passed", record.error
    state = table_state(project, "shop", "orders")
    assert all(b.gate == "passed" for b in state.batches if b.in_raw_zone)
    # nothing lost: every good row and the fixed one are in the raw table, the bad one not
    rows = lake_sql(project, "SELECT DISTINCT order_id, status FROM lake.shop.orders "
                    "WHERE order_id >= 990100 ORDER BY 1")  # fmt: skip
    assert rows == [(990101, "placed"), (990200, "placed"), (990201, "placed"),
                    (990202, "placed")]  # fmt: skip


def _committer(project_file: Path, stop: Path, every_s: float) -> subprocess.Popen:
    """Another process committing to the lake every `every_s` (as the collector does, in
    micro-batches), until `stop` exists; it prints how many commits it made."""
    code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from lake.batches import transaction
        from pipeline.config import load_project
        con = load_project(Path({str(project_file)!r})).lake.connect()
        con.execute("CREATE TABLE IF NOT EXISTS lake.main.ticks (i INTEGER)")
        n = 0
        while not Path({str(stop)!r}).exists():
            with transaction(con):
                con.execute(f"INSERT INTO lake.main.ticks VALUES ({{n}})")
            n += 1
            time.sleep({every_s})
        print(n)
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_a_dbt_build_commits_while_another_process_commits_every_few_ms(make_project) -> None:
    """DuckLake 1.5.5 cannot commit a model whose read of the SQLite catalog is older than
    another process's commit (duckdb/ducklake#1309): with a writer committing every 20 ms,
    every model lost, and `dbt retry` lost again. The commit lock (lake.locks) lets them
    take turns: the build passes at its first try, and the writer kept committing."""
    project = make_project(built=True)
    stop = project.base_dir / "stop"
    writer = _committer(project.path, stop, every_s=0.02)
    try:
        time.sleep(3)  # (it is committing)
        assert writer.poll() is None, writer.communicate()[1]
        result = build(project, select="tag:real_time", extra=["--full-refresh"])
        assert result.ok, result.failures
        assert result.models == 4 and result.failures == []
    finally:
        stop.touch()
        out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    commits = int(out.strip())
    assert commits > 20, commits
    assert lake_sql(project, "SELECT count(*) FROM lake.main.ticks") == [(commits,)]
