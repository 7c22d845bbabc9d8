"""Secrets never leave: not in what the CLI prints, nor in any file or object a run writes.

Passwords hold '@', ':', '/', quotes and a space, as people choose them; sources fail in
the ways that print connection strings. `make test-slow` sweeps a full `lakehouse run`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import yaml

from pipeline.config import Project, load_project
from tests.integration.helpers import cli
from tests.integration.vendor_api import VendorApi
from tests.postgres import psql
from tests.seaweedfs import s3_client

PASSWORD = "p@ss:w/rd 'q\"x"  # what a user typed
DSN_PASSWORD = "open sesame;\"x'"  # in a quoted libpq key=value string, ' escaped
TOKEN = "vendor-token-123"


def forms(secret: str, word: str) -> set[str]:
    """The secret as typed, URL-encoded, JSON-escaped, and a distinctive word of it (a
    half-masked password leaks too)."""
    return {secret, quote(secret, safe=""), quote_plus(secret), quote(secret),
            json.dumps(secret)[1:-1], word}  # fmt: skip


def _everything_written(
    root: Path, bucket: str, env: dict[str, str]
) -> Iterator[tuple[str, bytes]]:
    for path in root.rglob("*"):
        if path.is_file():
            yield str(path), path.read_bytes()
    s3 = s3_client(env)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            yield (
                f"s3://{bucket}/{obj['Key']}",
                s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read(),
            )


def _project(
    root: Path, postgres: str, api: VendorApi, bucket: str, env: dict[str, str]
) -> Project:
    server = postgres.split("@", 1)[1]  # 127.0.0.1:port/postgres (trust auth: any password)
    schema = f"secrets_{uuid.uuid4().hex[:8]}"
    psql(postgres, f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.products AS "
                   "SELECT 1 AS product_id, 'mug' AS name")  # fmt: skip
    (root / "in").mkdir(parents=True)
    (root / "in" / "orders.csv").write_text("order_id,amount\n1,2.5\n")
    dsn_password = DSN_PASSWORD.replace("'", "\\'")
    spec = {
        "lake": {"url": f"s3://{bucket}/lake"},
        "sources": [
            {"name": "files", "kind": "csv", "tables": [{"name": "orders", "path": "in/*.csv"}]},
            {"name": "shopdb", "kind": "postgres",  # up: the password URL-encoded, as it must be
             "database": {"url": f"postgresql://postgres:${{SHOP_DB_PASSWORD}}@{server}",
                          "schema": schema}, "tables": [{"name": "products"}]},
            {"name": "down_url", "kind": "postgres",  # down: the password as typed
             "database": {"url": "postgresql://nobody:${DOWN_DB_PASSWORD}@127.0.0.1:1/none",
                          "connect_retries": 0}, "tables": [{"name": "t"}]},
            {"name": "down_dsn", "kind": "postgres",
             "database": {"url": f"host=127.0.0.1 port=1 user=nobody "
                                 f"password='{dsn_password}' dbname=none",
                          "connect_retries": 0}, "tables": [{"name": "t"}]},
            {"name": "vendor", "kind": "http",
             "http": {"base_url": api.url, "auth": {"type": "bearer", "token": "${VENDOR_TOKEN}"},
                      "max_retries": 0},
             "tables": [{"name": "reviews", "endpoint": "/reviews", "records_path": "data"}]},
        ],
    }  # fmt: skip
    (root / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    return load_project(root / "lakehouse.yml", env=env)


def test_no_secret_in_any_output_of_a_failing_ingest(
    tmp_path: Path, postgres: str, s3_bucket: tuple[str, dict[str, str]]
) -> None:
    bucket, s3_env = s3_bucket
    env = {**s3_env, "SHOP_DB_PASSWORD": quote(PASSWORD, safe=""),
           "DOWN_DB_PASSWORD": PASSWORD, "VENDOR_TOKEN": TOKEN}  # fmt: skip
    with VendorApi(5) as api:
        api.fail_once = {"*": 500}
        project = _project(tmp_path / "p", postgres, api, bucket, env)
        printed = []
        for args in (("-v", "ingest"), ("status",), ("sources",), ("status", "--json")):
            done = cli(project, *args, env=env)
            printed.append((args, done.stdout + done.stderr))
    ingest_output = printed[0][1]
    assert "down_url" in ingest_output and "down_dsn" in ingest_output  # they did fail
    assert "vendor" in ingest_output and "HTTP 500" in ingest_output
    assert "files.orders" in ingest_output and "shopdb.products" in ingest_output
    assert "1 new batches" in ingest_output.split("shopdb.products")[1].splitlines()[0]

    secrets = {
        "database password": forms(PASSWORD, "w/rd"),
        "libpq password": forms(DSN_PASSWORD, "sesame"),
        "API token": forms(TOKEN, TOKEN),
        "S3 secret key": forms(s3_env["AWS_SECRET_ACCESS_KEY"], "test-secret"),
    }  # fmt: skip
    written = list(_everything_written(tmp_path / "p", bucket, s3_env))
    assert any("runs/" in name for name, _ in written)  # the run record is among them
    hits = [
        (what, where)
        for what, values in secrets.items()
        for where, content in [*((" ".join(a), o.encode()) for a, o in printed), *written]
        if where != str(project.path)  # the config names variables, not values
        for value in values
        if value.encode() in content
    ]
    assert hits == []


@pytest.mark.slow
def test_no_secret_in_anything_a_full_run_writes(make_project, postgres: str) -> None:
    """The whole pipeline (ingest, gates, dbt, Data Docs, publish, alerts), with a source
    down whose password holds every awkward character, and the vendor API's token."""
    project = make_project()
    spec = yaml.safe_load(project.path.read_text())
    spec["sources"].append({
        "name": "down", "kind": "postgres", "tables": [{"name": "t"}],
        "database": {"url": "postgresql://nobody:${DOWN_DB_PASSWORD}@127.0.0.1:1/none",
                     "connect_retries": 0}})  # fmt: skip
    project.path.write_text(yaml.safe_dump(spec, sort_keys=False))
    token = next(s["http"]["auth"]["token"] for s in spec["sources"] if s["kind"] == "http")
    done = cli(project, "-v", "run", env={"DOWN_DB_PASSWORD": PASSWORD}, timeout=1200)
    assert done.returncode == 2, done.stderr[-2000:]  # partial: the others went on
    printed = done.stdout + done.stderr
    secrets = {"database password": forms(PASSWORD, "w/rd"), "API token": forms(token, token)}
    hits = [
        (what, str(path))
        for path in [p for p in project.base_dir.rglob("*") if p.is_file()]
        if path != project.path
        for what, values in secrets.items()
        for value in values
        if value.encode() in path.read_bytes()
    ] + [(what, "output") for what, values in secrets.items() for v in values if v in printed]
    assert hits == []
