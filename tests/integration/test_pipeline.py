"""The whole pipeline, on the local lake and on a real S3 server (SeaweedFS)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from lake import layout
from lake.duck import connect
from pipeline.config import Project
from pipeline.run import run_pipeline
from tests.conftest import ProjectFactory
from tests.integration.helpers import all_states_of, published_run, raw_rows, serving_scalar


@pytest.fixture
def project(
    lake_kind: str, make_project: ProjectFactory, request: pytest.FixtureRequest
) -> Project:
    if lake_kind == "local":
        return make_project()
    bucket, env = request.getfixturevalue("s3_bucket")
    return make_project(lake_url=f"s3://{bucket}/shop", env=env)


def test_full_run_lands_gates_builds_and_publishes(project: Project, shop_sources) -> None:
    src_dir, counts = shop_sources
    record = run_pipeline(project)
    rows = {
        ("shop", t): counts[t] for t in ("customers", "products", "orders", "order_items",
                                          "inventory")
    } | {
        ("vendor", "reviews"): counts["reviews"], ("suppliers", "catalog"): counts["catalog"],
        ("iot", "sensor_readings"): counts["sensor_readings"],
        ("web", "clickstream"): counts["clickstream"], ("support", "tickets"): counts["tickets"],
        ("finance", "invoices"): counts["invoices"],
    }  # fmt: skip

    assert record.status == "passed"
    assert [s.name for s in record.stages] == [
        "ingest",
        "check_raw",
        "build",
        "check_marts",
        "publish",
    ]
    assert all(s.status == "passed" for s in record.stages)
    for (source, table), n in rows.items():  # every kind of source landed, row for row
        assert raw_rows(project, source, table) == n, (source, table)
    build = record.stage("build")
    assert build is not None and build.details["models"] >= 16
    # every published mart is gated by a suite
    from expectations import load_suites
    from pipeline.serve import current

    in_place = current(project)
    assert in_place is not None
    published = set(in_place.marts)
    assert {"fct_orders", "dim_customers", "fct_reviews", "mart_daily_kpis"} <= published
    assert published == {s.target for s in load_suites(project.expectations_dir, "marts")}
    assert build.details["tests_passed"] > 10
    raw_gate = record.stage("check_raw")
    assert raw_gate is not None and raw_gate.details["expectations"] >= 8

    # the published mart reconciles with the source files, row for row
    shopdb = connect()
    shopdb.execute(f"ATTACH '{src_dir}/shop.sqlite' AS src (TYPE sqlite, READ_ONLY)")
    expected = shopdb.sql(
        """
        SELECT (SELECT sum(quantity * unit_price::DECIMAL(12, 2))
                       - sum(discount_amount::DECIMAL(12, 2)) FROM src.order_items)
             + (SELECT sum(shipping_amount::DECIMAL(12, 2)) FROM src.orders)
        """
    ).fetchone()
    assert expected is not None
    assert serving_scalar(project, "SELECT count(*) FROM fct_orders") == counts["orders"]
    assert serving_scalar(project, "SELECT sum(net_amount) FROM fct_orders") == expected[0]
    assert published_run(project) == record.run_id

    # the run left a machine-readable record in the lake
    saved = json.loads(project.lake.storage.read_bytes(layout.run_key(record.run_id)) or b"{}")
    assert saved["status"] == "passed"
    assert saved["stages"][0]["details"]["rows"] == sum(rows.values())

    # lineage columns on every raw row
    con = project.lake.connect()
    lineage = con.execute(
        "SELECT count(*) FILTER (WHERE _load_id IS NULL OR _source_file IS NULL "
        "OR _ingested_at IS NULL), count(DISTINCT _source_file) FROM lake.web.clickstream",
    ).fetchone()
    con.close()
    assert lineage == (0, 3)  # one batch per monthly file


def test_rerun_without_new_data_lands_nothing(
    project: Project, shop_sources, lake_kind: str, make_project: ProjectFactory
) -> None:
    _, counts = shop_sources
    if lake_kind == "local":  # the session's first run, its folder moved: lands nothing again
        project = make_project(built=True, name="moved")
    else:
        run_pipeline(project)
    before = {(s.source, s.table): len(s.batches) for s in all_states_of(project)}
    again = run_pipeline(project)
    ingest = again.stage("ingest")
    assert ingest is not None
    assert all(t["batches"] == 0 for t in ingest.details["tables"].values())
    after = {(s.source, s.table): len(s.batches) for s in all_states_of(project)}
    assert before == after
    assert raw_rows(project, "shop", "orders") == counts["orders"]
    assert raw_rows(project, "vendor", "reviews") == counts["reviews"]


def test_a_new_file_is_one_new_batch(project: Project, shop_sources) -> None:
    _, counts = shop_sources
    run_pipeline(project, stages=("ingest",))
    new = project.base_dir / "sources" / "iot" / "sensor_readings_2026_04.csv"
    new.write_text(
        "warehouse_id,sensor_id,reading_ts,temperature_c\n1,cold-1-1,2026-04-01 00:00:00,4.2\n"
    )
    record = run_pipeline(project, stages=("ingest",), only=["iot.sensor_readings"])
    ingest = record.stage("ingest")
    assert ingest is not None
    assert ingest.details["tables"]["iot.sensor_readings"]["batches"] == 1
    assert raw_rows(project, "iot", "sensor_readings") == counts["sensor_readings"] + 1


def test_the_shop_on_postgresql_as_in_docker_compose(
    make_project: ProjectFactory, postgres: str, shop_sources
) -> None:
    """docker-compose runs the shop's database on PostgreSQL, and the lake's catalog in a
    database of its own on the same server: same tables, same marts."""
    import uuid

    from examples.shop.shop_data import load_into_postgres
    from tests.postgres import psql

    src_dir, counts = shop_sources
    load_into_postgres(src_dir / "shop.sqlite", postgres)
    catalog_db = f"lake_{uuid.uuid4().hex[:8]}"
    psql(postgres, f"CREATE DATABASE {catalog_db}")
    catalog = postgres.rsplit("/", 1)[0] + f"/{catalog_db}"
    serving_db = f"serving_{uuid.uuid4().hex[:8]}"
    psql(postgres, f"CREATE DATABASE {serving_db}")
    serving = postgres.rsplit("/", 1)[0] + f"/{serving_db}"
    project = make_project(env={"SHOP_DB_KIND": "postgres", "SHOP_DB_URL": postgres,
                                "LAKEHOUSE_CATALOG": catalog,
                                "SERVING_POSTGRES_URL": serving})  # fmt: skip
    assert project.spec.sources[0].kind == "postgres"
    assert project.lake.settings.catalog_kind == "postgres"
    record = run_pipeline(project)
    assert record.status == "passed"
    assert raw_rows(project, "shop", "orders") == counts["orders"]
    con = project.lake.connect()
    types = dict(con.execute(
        "SELECT column_name, column_type FROM (DESCRIBE lake.shop.orders)",
    ).fetchall())  # fmt: skip
    assert types["shipping_amount"] == "DECIMAL(12,2)"
    assert types["ordered_at"] == "TIMESTAMP WITH TIME ZONE"
    assert serving_scalar(project, "SELECT count(*) FROM fct_orders") == counts["orders"]
    # the catalog is in PostgreSQL: its tables are there, and no SQLite file was made
    assert "ducklake_snapshot" in psql(catalog, "SELECT tablename FROM pg_tables")
    assert not (project.base_dir / "lake" / "catalog.sqlite").exists()
    # BI tools read the same marts from the serving database, keyed and described
    published = project.lake.connect()
    marts = [r[0] for r in published.execute(
        "SELECT view_name FROM duckdb_views() WHERE schema_name = 'marts'").fetchall()]  # fmt: skip
    published.close()
    inspector = sa.inspect(sa.create_engine(serving.replace("postgresql://",
                                                            "postgresql+psycopg://")))  # fmt: skip
    assert sorted(inspector.get_table_names(schema="marts")) == sorted(marts)
    for mart in marts:
        assert psql(serving, f"SELECT count(*) FROM marts.{mart}").strip() == str(
            serving_scalar(project, f"SELECT count(*) FROM {mart}")
        ), mart
    assert inspector.get_pk_constraint("fct_orders", schema="marts")["constrained_columns"] == [
        "order_id"
    ]
    assert inspector.get_table_comment("fct_orders", schema="marts")["text"]
    ordered_at = {c["name"]: c for c in inspector.get_columns("fct_orders", schema="marts")}
    assert ordered_at["ordered_at"]["type"].timezone is True and ordered_at["order_id"]["comment"]
    funnel_oid = psql(serving, "SELECT 'marts.mart_funnel'::regclass::oid")
    # customers arrive through CDC from the WAL: a snapshot, then the changes
    psql(postgres, "INSERT INTO customers (customer_id, email, country, created_at, updated_at) "
                   "VALUES (999999, 'gone@example.com', 'FR', now(), now())")  # fmt: skip
    psql(postgres, "UPDATE customers SET country = 'NL' WHERE customer_id = 1; "
                   "DELETE FROM customers WHERE customer_id = 999999")  # fmt: skip
    again = run_pipeline(project)
    assert again.status == "passed", again.error
    ops = dict(con.execute("SELECT _op, count(*) FROM lake.shop.customers GROUP BY ALL")
               .fetchall())  # fmt: skip
    assert ops == {"snapshot": counts["customers"], "insert": 1, "update": 1, "delete": 1}
    con.close()
    # the marts follow: the deleted customer is not there, customer 1 moved and keeps
    # its old version
    assert serving_scalar(project, "SELECT count(*) FROM dim_customers") == counts["customers"]
    gone = serving_scalar(project, "SELECT list((is_deleted, is_current) ORDER BY version) FROM "
                                   "dim_customers_history WHERE customer_id = 999999")  # fmt: skip
    assert gone == [(False, False), (True, True)]  # its history stays, ending deleted
    assert serving_scalar(project, "SELECT country_code FROM dim_customers "
                                   "WHERE customer_id = 1") == "NL"  # fmt: skip
    versions = serving_scalar(project, "SELECT list(country_code ORDER BY version) FROM "
                                       "dim_customers_history WHERE customer_id = 1")  # fmt: skip
    assert isinstance(versions, list) and len(versions) == 2 and versions[-1] == "NL"
    # and so does the serving database: changed marts copied, the funnel left in place
    assert psql(serving, "SELECT country_code FROM marts.dim_customers "
                         "WHERE customer_id = 1").strip() == "NL"  # fmt: skip
    assert psql(serving, "SELECT 'marts.mart_funnel'::regclass::oid") == funnel_oid
    psql(postgres, "SELECT pg_drop_replication_slot('lakehouse_shop')")


def test_daily_revenue_reconciles_with_the_source_database(
    make_project: ProjectFactory, shop_sources
) -> None:
    """mart_daily_kpis' revenue for a period = the order lines in the shop's database."""
    src_dir, _ = shop_sources
    project = make_project(built=True)  # as the session's first run left it
    shopdb = connect()
    shopdb.execute(f"ATTACH '{src_dir}/shop.sqlite' AS src (TYPE sqlite, READ_ONLY)")
    expected = shopdb.sql(
        """
        WITH revenue_orders AS (
            SELECT order_id, shipping_amount::DECIMAL(12, 2) AS shipping
            FROM src.orders
            WHERE status NOT IN ('cancelled', 'returned')
              AND ordered_at::TIMESTAMP >= '2026-02-01' AND ordered_at::TIMESTAMP < '2026-03-01'
        )
        SELECT (SELECT sum(i.quantity * i.unit_price::DECIMAL(12, 2)
                           - i.discount_amount::DECIMAL(12, 2))
                FROM src.order_items i JOIN revenue_orders USING (order_id))
             + (SELECT sum(shipping) FROM revenue_orders)
        """
    ).fetchone()
    assert expected is not None and expected[0] > 0
    revenue = serving_scalar(
        project,
        "SELECT sum(revenue) FROM mart_daily_kpis "
        "WHERE kpi_date >= DATE '2026-02-01' AND kpi_date < DATE '2026-03-01'",
    )
    assert revenue == expected[0]  # to the cent
