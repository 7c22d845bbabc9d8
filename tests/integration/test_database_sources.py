"""Database sources against a real PostgreSQL and a real SQLite file."""

from __future__ import annotations

import sqlite3
import uuid
from decimal import Decimal
from pathlib import Path

import yaml

from ingest import run_ingest
from pipeline.config import Project, load_project
from tests.integration.helpers import cli, raw_rows, table_state
from tests.postgres import psql


def _project(root: Path, source: dict) -> Project:
    spec = {
        "lake": {"url": str(root / "lake")},
        "warehouse": {"dir": str(root / "warehouse")},
        "sources": [source],
    }
    (root / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    return load_project(root / "lakehouse.yml", env={})


def _ingest(project: Project):
    report = run_ingest(project.lake, project.spec.sources, project.base_dir)
    assert report.ok, report.failures()
    return report


def _rows(project: Project, source: str, table: str, sql: str) -> list[tuple]:
    con = project.lake.connect()
    try:
        return con.execute(sql.replace("{t}", f"lake.{source}.{table}"))\
            .fetchall()  # fmt: skip
    finally:
        con.close()


def test_postgres_full_dump_keeps_exact_types_and_lands_only_on_change(
    postgres: str, tmp_path: Path
) -> None:
    schema = f"s_{uuid.uuid4().hex[:8]}"
    psql(postgres, f"""
        CREATE SCHEMA {schema};
        CREATE TABLE {schema}.products (
            product_id bigint PRIMARY KEY, price numeric(12, 2), weight numeric,
            attrs jsonb, tags text[], created_at timestamptz);
        INSERT INTO {schema}.products VALUES
            (1, 19.99, 0.333333333333333333333, '{{"color": "red", "dims": {{"w": 2}}}}',
             ARRAY['a', 'b'], '2026-01-01 10:00:00+02'),
            (2, 5.00, 12345678901234567890.5, '{{}}', ARRAY[]::text[], '2026-01-02 00:00:00Z');
    """)  # fmt: skip
    project = _project(tmp_path, {
        "name": "shopdb", "kind": "postgres",
        "database": {"url": postgres, "schema": schema},
        "tables": [{"name": "products"}],
    })  # fmt: skip
    _ingest(project)
    types = dict(_rows(project, "shopdb", "products",
                       "SELECT column_name, column_type FROM (DESCRIBE FROM {t})"))  # fmt: skip
    assert types["price"] == "DECIMAL(12,2)"
    assert types["weight"] == "VARCHAR"  # exact digits, not a DOUBLE
    assert types["attrs"] == "JSON" and types["tags"] == "VARCHAR[]"
    assert types["created_at"] == "TIMESTAMP WITH TIME ZONE"
    row = _rows(project, "shopdb", "products",
                "SELECT price, weight, attrs->>'$.dims.w', tags, created_at::VARCHAR "
                "FROM {t} WHERE product_id = 1")[0]  # fmt: skip
    assert row[0] == Decimal("19.99") and row[1] == "0.333333333333333333333"
    assert row[2] == "2" and row[3] == ["a", "b"]
    assert row[4].startswith("2026-01-01 08:00:00")
    assert "12345678901234567890.5" in [r[0] for r in _rows(
        project, "shopdb", "products", "SELECT weight FROM {t}")]  # fmt: skip

    again = _ingest(project)  # unchanged: nothing lands
    assert again.rows == 0
    psql(postgres, f"UPDATE {schema}.products SET price = 21.00 WHERE product_id = 2")
    third = _ingest(project)  # changed: a new full dump
    assert third.rows == 2
    # write disposition replace (a full dump's default): the new dump replaces the old one
    assert raw_rows(project, "shopdb", "products") == 2
    assert _rows(project, "shopdb", "products", "SELECT price::VARCHAR FROM {t} "
                 "WHERE product_id = 2") == [("21.00",)]  # fmt: skip
    psql(postgres, f"DELETE FROM {schema}.products WHERE product_id = 2")
    assert _ingest(project).rows == 1
    assert raw_rows(project, "shopdb", "products") == 1  # deleted at the source: gone


def test_postgres_incremental_by_cursor_with_lag(postgres: str, tmp_path: Path) -> None:
    schema = f"s_{uuid.uuid4().hex[:8]}"
    psql(postgres, f"""
        CREATE SCHEMA {schema};
        CREATE TABLE {schema}.orders (order_id int PRIMARY KEY, status text,
                                       updated_at timestamptz NOT NULL);
        INSERT INTO {schema}.orders
        SELECT g, 'placed', '2026-01-01'::timestamptz + g * interval '1 minute'
        FROM generate_series(1, 1000) g;
    """)  # fmt: skip
    project = _project(tmp_path, {
        "name": "shopdb", "kind": "postgres", "database": {"url": postgres, "schema": schema},
        "tables": [{"name": "orders", "cursor": "updated_at", "lag": "5 minutes"}],
    })  # fmt: skip
    assert _ingest(project).rows == 1000
    state = table_state(project, "shopdb", "orders")
    assert state.watermark is not None and state.watermark.startswith("2026-01-01 16:40:00")

    assert _ingest(project).rows == 0  # nothing past the watermark: nothing lands
    psql(postgres, f"""
        UPDATE {schema}.orders SET status = 'shipped',
               updated_at = '2026-01-01'::timestamptz + interval '1001 minutes' WHERE order_id = 7;
        INSERT INTO {schema}.orders VALUES (1001, 'placed',
               '2026-01-01'::timestamptz + interval '1002 minutes');
    """)  # fmt: skip
    report = _ingest(project)
    # the two new versions, plus the 5-minute lag window re-read behind the watermark
    assert report.rows == 2 + 5
    latest = _rows(project, "shopdb", "orders",
                   "SELECT status FROM {t} WHERE order_id = 7 "
                   "ORDER BY updated_at DESC LIMIT 1")  # fmt: skip
    assert latest == [("shipped",)]


def test_sqlite_table_list_glob_and_incremental_ids(tmp_path: Path) -> None:
    db = tmp_path / "shop.sqlite"
    con = sqlite3.connect(db)
    con.executescript("""
        CREATE TABLE inventory_eu (sku TEXT, on_hand INTEGER);
        CREATE TABLE inventory_us (sku TEXT, on_hand INTEGER);
        CREATE TABLE audit_log (id INTEGER PRIMARY KEY, msg TEXT);
        INSERT INTO inventory_eu VALUES ('A', 3), ('B', 0);
        INSERT INTO inventory_us VALUES ('A', 7);
        INSERT INTO audit_log (msg) VALUES ('one'), ('two'), ('three');
        CREATE VIEW in_stock_v AS SELECT sku FROM inventory_eu WHERE on_hand > 0;
    """)
    con.commit()
    project = _project(tmp_path, {
        "name": "erp", "kind": "sqlite",
        "database": {"url": str(db), "include": ["inventory_*"]},
        "tables": [{"name": "audit", "table": "audit_log", "cursor": "id"},
                   {"name": "in_stock", "table": "in_stock_v"}],  # a view extracts too
    })  # fmt: skip
    report = _ingest(project)
    assert {(t.table, t.rows) for t in report.tables} == {
        ("audit", 3),
        ("in_stock", 1),
        ("inventory_eu", 2),
        ("inventory_us", 1),
    }
    assert _ingest(project).rows == 0
    con.execute("INSERT INTO audit_log (msg) VALUES ('four')")
    con.commit()
    con.close()
    report = _ingest(project)
    by_table = {t.table: t.rows for t in report.tables}
    assert by_table["audit"] == 1
    assert table_state(project, "erp", "audit").watermark == "4"

    listing = cli(project, "sources")  # the glob is expanded, the state shown
    assert listing.returncode == 0, listing.stderr
    assert "erp (sqlite)" in listing.stdout
    for name in ("audit", "inventory_eu", "inventory_us"):
        assert f"  {name} " in listing.stdout
    assert "batches 2, rows 4, quarantined 0" in listing.stdout
    assert "watermark 4" in listing.stdout


def test_unreachable_database_fails_that_source_only(tmp_path: Path) -> None:
    csv = tmp_path / "ok.csv"
    csv.write_text("a\n1\n")
    spec = {
        "lake": {"url": str(tmp_path / "lake")},
        "sources": [
            {"name": "down", "kind": "postgres",
             "database": {"url": "postgresql://nobody:hunter2@127.0.0.1:1/none",
                          "connect_retries": 2, "connect_backoff_s": 0.01},
             "tables": [{"name": "t"}]},
            {"name": "files", "kind": "csv", "tables": [{"name": "ok", "path": str(csv)}]},
        ],
    }  # fmt: skip
    (tmp_path / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    project = load_project(tmp_path / "lakehouse.yml", env={})
    report = run_ingest(project.lake, project.spec.sources, project.base_dir)
    assert not report.ok
    [failure] = report.failures()
    assert failure.startswith("source 'down'") and "cannot connect" in failure
    assert "(unreachable: 3 tries)" in failure  # retried: a server may come back
    assert "hunter2" not in failure  # secrets are never printed
    assert raw_rows(project, "files", "ok") == 1  # the other source still landed


def test_a_wrong_database_fails_at_once_without_retries(postgres: str, tmp_path: Path) -> None:
    wrong = postgres.rsplit("/", 1)[0] + "/no_such_database"
    project = _project(tmp_path, {
        "name": "typo", "kind": "postgres", "tables": [{"name": "t"}],
        "database": {"url": wrong, "connect_retries": 3, "connect_backoff_s": 5},
    })  # fmt: skip
    report = run_ingest(project.lake, project.spec.sources, project.base_dir)
    [failure] = report.failures()
    assert "cannot connect: " in failure and "no_such_database" in failure
    assert "tries" not in failure  # another try cannot fix it: no retries, no 15 s of waits


def test_a_declared_name_that_an_include_glob_also_matches_is_an_error(tmp_path: Path) -> None:
    """`{name: orders, table: orders_v2}` plus `include: [orders*]` would make two writers
    for lake table `orders` (the real `orders` and `orders_v2`): refused, by name."""
    db = tmp_path / "shop.sqlite"
    con = sqlite3.connect(db)
    con.executescript("""
        CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL);
        CREATE TABLE orders_v2 (id INTEGER PRIMARY KEY, total REAL);
        INSERT INTO orders VALUES (1, 9.5); INSERT INTO orders_v2 VALUES (1, 10.5);
    """)
    con.commit()
    con.close()
    project = _project(tmp_path, {
        "name": "erp", "kind": "sqlite",
        "database": {"url": str(db), "include": ["orders*"]},
        "tables": [{"name": "orders", "table": "orders_v2"}],
    })  # fmt: skip
    report = run_ingest(project.lake, project.spec.sources, project.base_dir)
    assert not report.ok
    [failure] = report.failures()
    assert "erp" in failure and "`database.include` matches table 'orders'" in failure, failure
    assert "two writers for one lake table" in failure
    assert raw_rows(project, "erp", "orders") == 0  # nothing landed under the clashing name


def test_an_incremental_batch_diverted_for_its_schema_is_not_diverted_again(
    tmp_path: Path,
) -> None:
    db = tmp_path / "app.sqlite"
    con = sqlite3.connect(db)
    con.executescript("""
        CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT);
        INSERT INTO events (kind) VALUES ('a'), ('b');
    """)
    con.commit()
    project = _project(tmp_path, {
        "name": "app", "kind": "sqlite", "schema_policy": "quarantine",
        "database": {"url": str(db)},
        "tables": [{"name": "events", "cursor": "id"}],
    })  # fmt: skip
    assert _ingest(project).rows == 2
    # the application adds a column, then writes rows past the cursor
    con.executescript("""
        ALTER TABLE events ADD COLUMN weight REAL;
        INSERT INTO events (kind, weight) VALUES ('c', 1.5), ('d', 2.5);
    """)
    con.commit()
    first = _ingest(project)
    assert first.rows == 0 and first.tables[0].quarantined == 2
    diverted = table_state(project, "app", "events").batches[-1]
    assert not diverted.in_raw_zone and "added weight" in (diverted.reason or "")
    for _ in range(2):  # the next runs read the same rows again: one record, not three
        again = _ingest(project)
        assert again.rows == 0 and again.tables[0].batches == []
        assert again.tables[0].waiting == [diverted.load_id]
    state = table_state(project, "app", "events")
    assert [b.load_id for b in state.batches if not b.in_raw_zone] == [diverted.load_id]
    assert raw_rows(project, "app", "events") == 2


def test_workers_attaching_one_source_at_once_all_get_it(tmp_path: Path) -> None:
    """An ingest run's workers share one DuckDB database: two tables of one source attach
    it at the same moment. DuckDB's `ATTACH IF NOT EXISTS` failed the second with
    "already exists" (42 of 200 tries of four threads here, and once in `make test`)."""
    import threading

    from ingest.sources.database import attach

    with sqlite3.connect(tmp_path / "src.db") as db:
        db.execute("CREATE TABLE t (id INTEGER)")
    project = _project(tmp_path, {"name": "src", "kind": "sqlite",
                                  "database": {"url": str(tmp_path / "src.db")},
                                  "tables": [{"name": "t"}]})  # fmt: skip
    source = project.spec.sources[0]
    failed: list[BaseException] = []
    for _ in range(50):
        shared = project.lake.connect(attach=False)
        start = threading.Barrier(4)

        def worker(shared=shared, start=start) -> None:
            cursor = shared.cursor()
            start.wait()
            try:
                attach(cursor, source, project.base_dir)
            except Exception as exc:  # (collected: a thread's exception is lost otherwise)
                failed.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert shared.execute("SELECT count(*) FROM src_src.t").fetchone() == (0,)
        shared.close()
    assert failed == []
