"""BI tools read the published marts from PostgreSQL: what they list (tables, columns and
their types, keys, comments) through SQLAlchemy's inspector and psql, never a mixed set
or an error while publishes swap, only changed marts copied, and a reader that cannot
write."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from lake.layout import BUILD
from pipeline.config import Project, load_project
from pipeline.serve import publish, rollback
from pipeline.serve_postgres import served_snapshots
from tests.postgres import psql

MARTS = ("mart_a", "mart_b", "mart_c")


def _manifest(path: Path) -> None:
    """What dbt's manifest says of the marts: descriptions, and a unique + not_null id."""
    nodes: dict[str, dict] = {}
    for mart in MARTS:
        nodes[f"model.shop.{mart}"] = {
            "resource_type": "model", "name": mart, "alias": mart,
            "description": f"{mart}: one row per thing",
            "columns": {"id": {"description": "the thing's key"},
                        "placed_at": {"description": "when, with its time zone"}},
            "config": {"meta": {"serving": {"indexes": [
                {"columns": ["generation"], "include": ["amount"]}]}}},
        }  # fmt: skip
        for test in ("unique", "not_null"):
            nodes[f"test.shop.{test}_{mart}_id"] = {
                "resource_type": "test", "attached_node": f"model.shop.{mart}",
                "column_name": "id", "test_metadata": {"name": test},
            }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"nodes": nodes}))


def _project(tmp_path: Path, postgres: str) -> tuple[Project, str]:
    name = f"serve_{uuid.uuid4().hex[:8]}"
    psql(postgres, f"CREATE DATABASE {name}")
    url = postgres.rsplit("/", 1)[0] + f"/{name}"
    (tmp_path / "lakehouse.yml").write_text(
        "name: t\nlake: {url: lake}\nwarehouse: {dir: wh}\n"
        f"serving: {{postgres: {{url: '{url}', reader_role: bi_{name}, "
        "reader_password: read-only-please}}\n"
    )
    project = load_project(tmp_path / "lakehouse.yml", env={})
    _manifest(project.warehouse_dir / "dbt" / "target" / "manifest.json")
    return project, url


def _build(project: Project, generation: int, marts: tuple[str, ...] = MARTS) -> None:
    """`dbt build` of `marts`, each row carrying the generation that wrote it."""
    con = project.lake.connect()
    con.execute(f"CREATE SCHEMA IF NOT EXISTS lake.{BUILD}")
    for mart in marts:
        con.execute(
            f"CREATE OR REPLACE TABLE lake.{BUILD}.{mart} AS SELECT range AS id, "
            f"{generation} AS generation, TIMESTAMPTZ '2026-01-02 03:04:05+02' AS placed_at, "
            f"[range, {generation}] AS tags, 12345678901234567890.123::DECIMAL(38, 3) AS amount, "
            f"{{'k': range}} AS detail FROM range({10 + generation})"
        )
    con.close()


def _sa(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def test_bi_tools_see_keys_types_and_comments(tmp_path: Path, postgres: str) -> None:
    from expectations import gx_duckdb

    # as in a process that ran a gate: GX's DuckDB connections get a connect hook, which
    # must leave every other engine's connections alone
    gx_duckdb.run_on_connect(str(tmp_path / "gate.duckdb"), ["SELECT 1"])
    project, url = _project(tmp_path, postgres)
    _build(project, 1)
    publish(project, force=True)

    inspector = sa.inspect(_sa(url))
    assert sorted(inspector.get_table_names(schema="marts")) == list(MARTS)
    columns = {c["name"]: c for c in inspector.get_columns("mart_a", schema="marts")}
    assert isinstance(columns["placed_at"]["type"], sa.TIMESTAMP)
    assert columns["placed_at"]["type"].timezone is True
    assert isinstance(columns["tags"]["type"], sa.ARRAY)
    assert isinstance(columns["amount"]["type"], sa.NUMERIC)
    assert columns["id"]["comment"] == "the thing's key"
    assert inspector.get_pk_constraint("mart_a", schema="marts")["constrained_columns"] == ["id"]
    assert inspector.get_table_comment("mart_a", schema="marts")["text"] == (
        "mart_a: one row per thing"
    )
    indexes = {i["name"]: i for i in inspector.get_indexes("mart_a", schema="marts")}
    assert indexes["mart_a_serving_0"]["column_names"] == ["generation"]  # asked for in meta
    # values exact: a time zone kept, a 38-digit decimal, a list, a struct as JSON
    reader = url.replace("postgres@", f"bi_{url.rsplit('/', 1)[1]}:read-only-please@")
    row = psql(reader, "SELECT placed_at AT TIME ZONE 'UTC', amount, tags, detail::json->>'k' "
                       "FROM marts.mart_a WHERE id = 3")  # fmt: skip
    assert row.strip() == "2026-01-02 01:04:05|12345678901234567890.123|{3,1}|3"
    assert psql(reader, "SHOW work_mem").strip() == "64MB"  # dashboards aggregate in memory


def test_the_reader_role_reads_and_cannot_write(tmp_path: Path, postgres: str) -> None:
    project, url = _project(tmp_path, postgres)
    _build(project, 1)
    publish(project, force=True)
    reader = url.replace("postgres@", f"bi_{url.rsplit('/', 1)[1]}:read-only-please@")
    assert psql(reader, "SELECT count(*) FROM marts.mart_b").strip() == "11"
    for statement in (
        "INSERT INTO marts.mart_b (id) VALUES (99)",
        "DELETE FROM marts.mart_b",
        "DROP TABLE marts.mart_b",
        "CREATE TABLE marts.mine (x int)",
        "CREATE TABLE public.mine (x int)",
        "SELECT * FROM _lakehouse_serving.published",
        "SET default_transaction_read_only = off; UPDATE marts.mart_b SET generation = 0",
    ):
        with pytest.raises(RuntimeError, match=r"permission denied|read-only"):
            psql(reader, statement)
    assert psql(reader, "SELECT count(*) FROM marts.mart_b").strip() == "11"


def test_only_changed_marts_are_copied_and_rollback_restores(tmp_path: Path, postgres: str) -> None:
    project, url = _project(tmp_path, postgres)
    _build(project, 1)
    first = publish(project, force=True)
    oid = "SELECT 'marts.{}'::regclass::oid"
    before = {m: psql(url, oid.format(m)).strip() for m in MARTS}

    _build(project, 2, marts=("mart_b",))
    second = publish(project, force=True)
    assert served_snapshots(url) == second.snapshots
    after = {m: psql(url, oid.format(m)).strip() for m in MARTS}
    assert after["mart_a"] == before["mart_a"] and after["mart_c"] == before["mart_c"]
    assert after["mart_b"] != before["mart_b"]  # the only one copied
    assert psql(url, "SELECT DISTINCT generation FROM marts.mart_b").strip() == "2"
    assert psql(url, "SELECT DISTINCT generation FROM marts.mart_a").strip() == "1"
    # nothing left of the swap: no load or replaced schema
    leftovers = psql(url, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE '\\_lakehouse\\_%' "
                          "AND nspname <> '_lakehouse_serving'")  # fmt: skip
    assert leftovers.strip() == "0"

    rollback(project)
    assert served_snapshots(url) == first.snapshots
    assert psql(url, "SELECT DISTINCT generation FROM marts.mart_b").strip() == "1"


def test_readers_never_see_a_mixed_set_or_an_error_while_publishes_swap(
    tmp_path: Path, postgres: str
) -> None:
    project, url = _project(tmp_path, postgres)
    _build(project, 1)
    publish(project, force=True)
    stop = threading.Event()
    seen: list[tuple[int, ...]] = []
    errors: list[str] = []
    listed = [0]
    one_statement = "SELECT " + ", ".join(
        f"(SELECT min(generation) FROM marts.{m}), (SELECT max(generation) FROM marts.{m})"
        for m in MARTS
    )

    def query() -> None:
        with psycopg.connect(url, autocommit=True) as pg:  # a pool's long-lived connection
            while not stop.is_set():
                try:
                    seen.append(tuple(pg.execute(one_statement).fetchone() or ()))
                except psycopg.Error as exc:
                    errors.append(f"query: {exc}")

    def inspect() -> None:
        engine = _sa(url)
        while not stop.is_set():
            try:
                inspector = sa.inspect(engine)
                for mart in inspector.get_table_names(schema="marts"):
                    inspector.get_columns(mart, schema="marts")
                    inspector.get_pk_constraint(mart, schema="marts")
                    inspector.get_table_comment(mart, schema="marts")
                listed[0] += 1
            except sa.exc.SQLAlchemyError as exc:
                errors.append(f"inspect: {exc}")
        engine.dispose()

    threads = [threading.Thread(target=query), threading.Thread(target=inspect)]
    for t in threads:
        t.start()
    try:
        for generation in range(2, 8):
            _build(project, generation)
            publish(project, force=True)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert listed[0] > 0 and len(seen) > 10
    mixed = [row for row in seen if len(set(row)) != 1]
    assert mixed == []
    assert {row[0] for row in seen} >= {7}  # the readers saw publishes happen
    assert psql(url, "SELECT DISTINCT generation FROM marts.mart_c").strip() == "7"


def _rows(project: Project, url: str, mart: str) -> tuple[list[str], list[str]]:
    """The mart's (id, generation, tags) rows in the lake's publication and in PostgreSQL."""
    con = project.lake.connect()
    lake = [f"{i}|{g}|{{{','.join(map(str, t))}}}" for i, g, t in con.execute(
        f"SELECT id, generation, tags FROM lake.marts.{mart} ORDER BY id").fetchall()]  # fmt: skip
    con.close()
    served = psql(url, f"SELECT id, generation, tags FROM marts.{mart} ORDER BY id").split()
    return lake, served


def test_a_small_change_is_applied_in_place_exactly_while_readers_read(
    tmp_path: Path, postgres: str
) -> None:
    """A changed mart PostgreSQL already holds gets its changed rows, not a new copy: by
    its change feed (updated in place), or by comparing both versions (a table rebuilt
    with nearly the same rows, a rollback). A table edited by hand is copied whole."""
    project, url = _project(tmp_path, postgres)
    con = project.lake.connect()
    con.execute(f"CREATE SCHEMA IF NOT EXISTS lake.{BUILD}")
    for mart in MARTS:
        con.execute(
            f"CREATE TABLE lake.{BUILD}.{mart} AS SELECT range AS id, 1 AS generation, "
            "TIMESTAMPTZ '2026-01-02 03:04:05+02' AS placed_at, [range, 1] AS tags, "
            "1.5::DECIMAL(38, 3) AS amount, {'k': range} AS detail FROM range(1000)"
        )
    con.close()
    first = publish(project, force=True)
    oid = "SELECT 'marts.{}'::regclass::oid"
    oids = {m: psql(url, oid.format(m)).strip() for m in MARTS}

    stop = threading.Event()
    seen: list[tuple[int, ...]] = []
    errors: list[str] = []
    both = ("SELECT (SELECT max(generation) FROM marts.mart_a), "
            "(SELECT max(generation) FROM marts.mart_c), "
            "(SELECT count(*) FROM marts.mart_a), (SELECT count(*) FROM marts.mart_c)")  # fmt: skip

    def query() -> None:
        with psycopg.connect(url, autocommit=True) as pg:
            while not stop.is_set():
                try:
                    seen.append(tuple(pg.execute(both).fetchone() or ()))
                except psycopg.Error as exc:
                    errors.append(str(exc))

    reader = threading.Thread(target=query)
    reader.start()
    try:
        # mart_a and mart_c change in place together: rows updated, deleted, inserted
        for generation in range(2, 6):
            con = project.lake.connect()
            for mart in ("mart_a", "mart_c"):
                con.execute(f"UPDATE lake.{BUILD}.{mart} SET generation = {generation}, "
                            f"tags = [id, {generation}] WHERE id % 97 = {generation}")  # fmt: skip
                con.execute(f"DELETE FROM lake.{BUILD}.{mart} WHERE id = {generation * 10}")
                con.execute(f"INSERT INTO lake.{BUILD}.{mart} SELECT 5000 + {generation}, "
                            f"{generation}, now(), [0], 2.5, {{'k': 0}}")  # fmt: skip
            con.close()
            publish(project, force=True)
    finally:
        stop.set()
        reader.join()
    assert errors == []
    assert seen and all(row[0] == row[1] and row[2] == row[3] for row in seen), set(seen)
    assert {row[0] for row in seen} >= {5}
    for mart in ("mart_a", "mart_c"):
        assert psql(url, oid.format(mart)).strip() == oids[mart]  # not copied again
        lake, served = _rows(project, url, mart)
        assert served == lake and len(lake) == 1000

    # mart_b rebuilt whole with one row different: compared, two rows sent, not copied
    con = project.lake.connect()
    con.execute(f"CREATE OR REPLACE TABLE lake.{BUILD}.mart_b AS SELECT * REPLACE "
                f"(CASE WHEN id = 7 THEN 9 ELSE generation END AS generation) "
                f"FROM lake.{BUILD}.mart_b")  # fmt: skip
    con.close()
    publish(project, force=True)
    assert psql(url, oid.format("mart_b")).strip() == oids["mart_b"]
    lake, served = _rows(project, url, "mart_b")
    assert served == lake and "7|9|{7,1}" in served

    # a served table edited by hand where the change touches it (a row it lost is not
    # there) is found out, and copied whole: the rows deleted elsewhere come back too
    psql(url, "DELETE FROM marts.mart_c WHERE id < 3 OR id = 500")
    con = project.lake.connect()
    con.execute(f"UPDATE lake.{BUILD}.mart_c SET generation = 6 WHERE id = 500")
    con.close()
    publish(project, force=True)
    assert psql(url, oid.format("mart_c")).strip() != oids["mart_c"]
    lake, served = _rows(project, url, "mart_c")
    assert served == lake and "500|6|{500,1}" in served

    # back to the first publication: every mart's rows as they were then
    while served_snapshots(url) != first.snapshots:
        rollback(project)
    for mart in MARTS:
        lake, served = _rows(project, url, mart)
        assert served == lake and "1|1|{1,1}" in served and len(served) == 1000
