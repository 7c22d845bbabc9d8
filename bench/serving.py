"""Serving the shop's marts to people and BI tools, at `BENCH_SERVING_SCALE` (default 400:
8M orders, 24M order lines), ingested, built and published once (not timed).

`serving`: the README's dashboard questions (daily KPIs, the funnel, inventory to
reorder, the reviewers most suspected of fraud, from `mart_reviewer_fraud`) against the
published marts, each asked `BENCH_QUERIES` times
on one open connection, as a dashboard or a BI pool does: through DuckDB
(`lakehouse query`'s read-only connection, `p95_duckdb_ms`) and through the PostgreSQL
serving database (psycopg, `p95_postgres_ms`). value: the p95 through PostgreSQL;
reference: the p95 through DuckDB on the same marts. Targets: 100 ms and 200 ms. The
same fraud question over every review of `fct_reviews` is reported beside it
(`per_question.*.fraud_from_reviews`), outside the p95.

`publish_postgres`: bringing the serving database from the previous publication to the
next after a small change (`next_day` at 0.1% new orders, ingested and built
incrementally): changed rows applied in place, small or rebuilt-whole marts copied, the
rest moved. Against a full copy of every mart into an empty serving database. Same
code, same settings, fresh processes, alternating; median of `BENCH_REPEAT`. Target:
ratio <= 0.2.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import DATA, Measurement, measure, median_run, write_result

SCALE = float(os.environ.get("BENCH_SERVING_SCALE", "400"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
QUERIES = int(os.environ.get("BENCH_QUERIES", "30"))

# SQL both DuckDB and PostgreSQL run as written
QUESTIONS = {
    "kpis": "SELECT kpi_date, revenue, orders, average_order_value, fraud_rate "
            "FROM mart_daily_kpis ORDER BY kpi_date DESC LIMIT 30",
    "funnel": "SELECT step, sum(sessions) AS sessions FROM mart_funnel "
              "GROUP BY step, step_number ORDER BY step_number",
    "inventory": "SELECT s.product_id, p.product_name, s.warehouse_id, s.on_hand, "
                 "s.reorder_point, s.days_of_cover FROM mart_inventory_status s "
                 "JOIN dim_products p USING (product_id) WHERE s.needs_reorder "
                 "ORDER BY s.days_of_cover NULLS LAST LIMIT 20",
    "fraud": "SELECT customer_id, suspected_reviews, max_fraud_score, fraud_reasons "
             "FROM mart_reviewer_fraud "
             "ORDER BY suspected_reviews DESC, max_fraud_score DESC LIMIT 20",
}  # fmt: skip
ADHOC = {
    # the same fraud question asked of every review, as an analyst would ad hoc: reported,
    # not part of the dashboard p95
    "fraud_from_reviews": "SELECT customer_id, count(*) FILTER (WHERE is_suspected_fraud) "
                          "AS suspected, max(fraud_score) AS max_score FROM fct_reviews "
                          "GROUP BY customer_id ORDER BY suspected DESC, max_score DESC LIMIT 20",
}  # fmt: skip


def _project(project_file: str, **_: Any) -> Any:
    import pipeline.serve
    import pipeline.serve_postgres  # noqa: F401
    from pipeline.config import load_project

    return load_project(Path(project_file))


setup_latencies = setup_serve_changed = setup_serve_full = _project


def _percentiles(ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ms, n=20, method="inclusive")
    return {"p50": round(statistics.median(ms), 2), "p95": round(q[18], 2)}


def latencies(project: Any, url: str, **_: Any) -> dict[str, Any]:
    """Each question QUERIES times on one DuckDB and one PostgreSQL connection."""
    import psycopg

    from pipeline.serve import connect_serving

    duck = connect_serving(project)
    # as a BI tool logs in: the read-only role (its session settings apply)
    pg = psycopg.connect(url.replace("postgres@", "bench_bi:bench-bi-pw@"), autocommit=True)
    pg.execute("SET search_path = marts")
    out: dict[str, Any] = {"duckdb": {}, "postgres": {}}
    every: dict[str, list[float]] = {"duckdb": [], "postgres": []}
    for name, sql in {**QUESTIONS, **ADHOC}.items():
        for engine, run in (("duckdb", lambda s=sql: duck.execute(s).fetchall()),
                            ("postgres", lambda s=sql: pg.execute(s).fetchall())):  # fmt: skip
            rows = run()  # warm: the first read of a file or page
            assert rows, f"{name} on {engine}: no rows"
            ms = []
            for _i in range(QUERIES):
                t0 = time.perf_counter()
                run()
                ms.append((time.perf_counter() - t0) * 1000)
            out[engine][name] = _percentiles(ms)
            every[engine] += ms if name in QUESTIONS else []
    duck.close()
    pg.close()
    out["all"] = {engine: _percentiles(ms) for engine, ms in every.items()}
    return out


def _reset(url: str, keep: bool) -> None:
    """The serving database as a publish finds it: empty (`keep` false), or holding the
    previous publication, as saved by `_save_previous` (a copy of the database)."""
    import psycopg

    if not keep:
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute("DROP SCHEMA IF EXISTS marts CASCADE")
            pg.execute("DROP SCHEMA IF EXISTS _lakehouse_serving CASCADE")
        return
    admin, name = url.rsplit("/", 1)
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as pg:
        pg.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        pg.execute(f"CREATE DATABASE {name} TEMPLATE {name}_previous STRATEGY FILE_COPY")


def _save_previous(url: str) -> None:
    """A copy of the serving database as it is (the previous publication), for `_reset`."""
    import psycopg

    admin, name = url.rsplit("/", 1)
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as pg:
        pg.execute(f"CREATE DATABASE {name}_previous TEMPLATE {name} STRATEGY FILE_COPY")


def _serve(project: Any) -> dict[str, Any]:
    from pipeline.serve import serve_bi

    served = serve_bi(project)
    assert served is not None
    return {"copied": served.copied, "updated": served.updated, "kept": len(served.kept),
            "seconds": served.seconds, "mart_seconds": served.mart_seconds}  # fmt: skip


def serve_full(project: Any, **_: Any) -> dict[str, Any]:
    return _serve(project)


def serve_changed(project: Any, **_: Any) -> dict[str, Any]:
    return _serve(project)


def _shop(workdir: Path, url: str) -> tuple[Any, dict[str, int]]:
    """The shop built and published once; PostgreSQL serving configured."""
    import yaml

    from bench.dbt_build import INCREMENTAL, ingest, make_shop_project
    from pipeline.config import load_project
    from pipeline.serve import publish
    from pipeline.transform import run_dbt

    project = make_shop_project(workdir, SCALE)
    spec = yaml.safe_load(project.path.read_text())
    spec["serving"] = {"postgres": {"url": url, "reader_role": "bench_bi",
                                    "reader_password": "bench-bi-pw"}}  # fmt: skip
    project.path.write_text(yaml.safe_dump(spec, sort_keys=False))
    project = load_project(project.path)
    t0 = time.monotonic()
    ingest(project)
    built = run_dbt(project, INCREMENTAL)
    assert built.ok, built.failures
    first = publish(project, "bench-1", force=True)
    print(f"   built and published in {time.monotonic() - t0:.0f}s", flush=True)
    return project, first.snapshots


def _server() -> Any:
    from tests.postgres import postgres_server, psql

    class Server:
        def __enter__(self) -> str:
            self._cm = postgres_server()
            dsn = self._cm.__enter__()
            name = f"serving_{uuid.uuid4().hex[:6]}"
            psql(dsn, f"CREATE DATABASE {name}")
            return dsn.rsplit("/", 1)[0] + f"/{name}"

        def __exit__(self, *exc: Any) -> None:
            self._cm.__exit__(*exc)

    return Server()


def run_serving() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-serving-", dir=DATA) as workdir, \
            _server() as url:  # fmt: skip
        project, _ = _shop(Path(workdir), url)
        m = measure("bench.serving:latencies", {"project_file": str(project.path), "url": url})
        lat = m.extra
        value = Measurement(lat["all"]["postgres"]["p95"], m.peak_rss_mb, {})
        reference = Measurement(lat["all"]["duckdb"]["p95"], m.peak_rss_mb, {})
        return write_result(
            "serving", value, reference, unit="ms", scale=SCALE, queries_each=QUERIES,
            p95_duckdb_ms=lat["all"]["duckdb"]["p95"], p50_duckdb_ms=lat["all"]["duckdb"]["p50"],
            p95_postgres_ms=lat["all"]["postgres"]["p95"],
            p50_postgres_ms=lat["all"]["postgres"]["p50"],
            per_question={"duckdb": lat["duckdb"], "postgres": lat["postgres"]},
            targets={"p95_duckdb_ms": 100, "p95_postgres_ms": 200},
        )  # fmt: skip


def run_publish_postgres() -> dict[str, Any]:
    from bench.dbt_build import INCREMENTAL, ingest
    from examples.shop.shop_day import next_day
    from pipeline.serve import publish
    from pipeline.transform import run_dbt

    with tempfile.TemporaryDirectory(prefix="bench-publish-pg-", dir=DATA) as workdir, \
            _server() as url:  # fmt: skip
        project, previous = _shop(Path(workdir), url)
        _save_previous(url)
        day = next_day(project.base_dir / "sources" / "shop.sqlite", fraction=0.001)
        ingest(project)
        built = run_dbt(project, INCREMENTAL)
        assert built.ok, built.failures
        now = publish(project, "bench-2", force=True)
        changed = sorted(m for m in now.snapshots if now.snapshots[m] != previous.get(m))
        args = {"project_file": str(project.path)}
        vals: list[Measurement] = []
        refs: list[Measurement] = []
        for _ in range(REPEAT):
            _reset(url, keep=True)
            vals.append(measure("bench.serving:serve_changed", args))
            _reset(url, keep=False)
            refs.append(measure("bench.serving:serve_full", args))
        value, ref = median_run(vals), median_run(refs)
        return write_result("publish_postgres", value, ref, scale=SCALE, new_day=day,
                            marts=len(now.snapshots), changed_marts=changed,
                            reference_copied=len(ref.extra.get("copied", [])))  # fmt: skip
