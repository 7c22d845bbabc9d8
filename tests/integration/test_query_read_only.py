"""`lakehouse query` reads the lake and nothing else: every write or escape is refused."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml

from ingest import run_ingest
from pipeline.config import Project, load_project
from pipeline.errors import StageFailed
from pipeline.serve import connect_serving, query
from tests.integration.helpers import cli, raw_rows, s3_env_of

SECRET_FILE = "secret.txt"
ROWS = 500


def _project(tmp_path: Path, lake_kind: str, request: pytest.FixtureRequest,
             catalog: str | None = None) -> Project:  # fmt: skip
    (tmp_path / "in").mkdir()
    rows = "".join(f"{i},{i}.25\n" for i in range(1, ROWS + 1))  # beyond inlining: Parquet
    (tmp_path / "in" / "orders.csv").write_text("order_id,amount\n" + rows)
    (tmp_path / SECRET_FILE).write_text("the project's own secret\n")
    lake_url, env = str(tmp_path / "lake"), {}
    if lake_kind == "s3":
        bucket, env = request.getfixturevalue("s3_bucket")
        lake_url = f"s3://{bucket}/lake"
    spec = {
        "lake": {"url": lake_url, **({"catalog": catalog} if catalog else {})},
        "sources": [{"name": "files", "kind": "csv",
                     "tables": [{"name": "orders", "path": "in/*.csv"}]}],
    }  # fmt: skip
    (tmp_path / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    project = load_project(tmp_path / "lakehouse.yml", env=env)
    report = run_ingest(project.lake, project.spec.sources, project.base_dir)
    assert report.ok, report.failures()
    return project


def _attacks(project: Project, tmp_path: Path) -> dict[str, str]:
    """Each attempt and the words its refusal must carry."""
    data = project.lake.settings.data_path
    outside = tmp_path / "written.csv"
    attacks = {
        f"COPY (SELECT 1) TO '{outside}'": "COPY statements are refused",
        f"COPY (SELECT 1 AS order_id) TO '{data}files/orders/fake.parquet'": "COPY",
        "SELECT 1; DETACH lake": "DETACH statements are refused",
        f"ATTACH '{project.lake.settings.ducklake_uri}' AS rw (DATA_PATH '{data}')": "ATTACH",
        "INSERT INTO raw.files.orders VALUES (3, 1.0, NULL, NULL)": "INSERT",
        "CREATE TABLE lake.files.fake AS SELECT 1": "CREATE",
        "SET enable_external_access = true": "SET",
        "CALL ducklake_expire_snapshots('lake', older_than => now())": "CALL",
        "SELECT * FROM read_text('/etc/passwd')": "disabled by configuration",
        f"SELECT * FROM read_text('{tmp_path / SECRET_FILE}')": "disabled by configuration",
        "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')": "disabled by configuration",
        "LOAD httpfs": "LOAD",
        "SELECT * FROM query('COPY (SELECT 1) TO ''x.csv''')": "single SELECT",
    }
    if project.lake.settings.is_s3:
        bucket = project.lake.settings.bucket
        attacks[f"SELECT * FROM read_text('s3://{bucket}/elsewhere/x.txt')"] = (
            "disabled by configuration"
        )
    return attacks


@pytest.mark.parametrize(
    ("lake_kind", "catalog"),
    [("local", "sqlite"), ("s3", "sqlite"), ("local", "postgres")],
    indirect=["catalog"],
)
def test_query_cannot_write_or_read_outside_the_lake(
    lake_kind: str, catalog: str | None, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    project = _project(tmp_path, lake_kind, request, catalog)
    total = query(project, "SELECT count(*), sum(amount) FROM raw.files.orders")[1]
    assert total == [(ROWS, ROWS * (ROWS + 1) / 2 + ROWS * 0.25)]
    for sql, refusal in _attacks(project, tmp_path).items():
        with pytest.raises((StageFailed, duckdb.Error)) as caught:
            query(project, sql)
        assert refusal in str(caught.value), (sql, str(caught.value))
    assert not (tmp_path / "written.csv").exists()
    assert raw_rows(project, "files", "orders") == ROWS
    # below the statement check: the reader's connection itself loads no extension, not
    # even one whose file skipped DuckDB's signature check (`lake.extensions`)
    fake = tmp_path / "fake.duckdb_extension"
    fake.write_bytes(b"\0" * 1024)
    reader = connect_serving(project)
    unsigned = reader.execute("SELECT current_setting('allow_unsigned_extensions')").fetchone()
    assert unsigned == (True,)  # (what a LOAD would otherwise allow)
    with pytest.raises(duckdb.PermissionException, match="disabled through configuration"):
        reader.execute(f"LOAD '{fake}'")
    reader.close()
    # the lake's own Parquet files stay readable: that is what the allowed directory is for
    data = project.lake.settings.data_path
    files = query(project, f"SELECT count(*) FROM glob('{data}**/*.parquet')")[1]
    assert files == [(1,)]
    secrets = query(project, "SELECT secret_string FROM duckdb_secrets()")[1]
    s3 = project.lake.settings.s3
    assert s3 is None or all(s3.secret_access_key not in str(row) for row in secrets)


def test_the_cli_refuses_a_write_in_one_line(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    project = _project(tmp_path, "local", request)
    done = cli(project, "query", f"COPY raw.files.orders TO '{tmp_path / 'out.csv'}'",
               env=s3_env_of(project))  # fmt: skip
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "error: query failed: read-only: COPY statements are refused "
        "(queries run SELECT or EXPLAIN)"
    ]
    assert not (tmp_path / "out.csv").exists()
