"""File sources on messy input: every row is landed or quarantined, none is lost."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pytest
import yaml

from ingest import run_ingest
from lake.duck import connection_config
from pipeline.config import Project, load_project
from tests.integration.helpers import raw_rows


def _project(root: Path, tables: list[dict], kind: str, lake_url: str | None = None,
             env: dict[str, str] | None = None) -> Project:  # fmt: skip
    spec = {
        "lake": {"url": lake_url or str(root / "lake")},
        "warehouse": {"dir": str(root / "warehouse")},
        "sources": [{"name": "files", "kind": kind, "tables": tables}],
    }
    (root / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    return load_project(root / "lakehouse.yml", env=env or {})


def _ingest(project: Project):
    report = run_ingest(project.lake, project.spec.sources, project.base_dir, project.spec.ingest)
    return report


def _quarantine(project: Project, table: str) -> list[tuple]:
    con = project.lake.connect()
    try:
        return con.execute(
            "SELECT source_file, line, error_type, reason, raw_record "
            "FROM lake._lakehouse.rejected_rows WHERE source = 'files' AND table_name = ? "
            "ORDER BY line",
            [table],
        ).fetchall()
    finally:
        con.close()


def test_csv_dialects_encodings_and_compression(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    (d / "bom.csv").write_bytes("\ufeffid,name\n1,Zoë\n2,Ana\n".encode())
    (d / "latin1.csv").write_bytes("id;name\n3;Jürgen\n4;Åsa\n".encode("latin-1"))
    (d / "noheader.csv").write_text("5|Bo\n6|Cy\n")
    with gzip.open(d / "gz.csv.gz", "wt") as fh:
        fh.write('id,name\n7,"Quoted, name"\n8,Dee\n')
    duckdb.sql(f"COPY (SELECT 9 AS id, 'Zed' AS name) TO '{d / 'z.csv.zst'}' (HEADER)")
    project = _project(tmp_path, [
        {"name": "bom", "path": str(d / "bom.csv")},
        {"name": "latin", "path": str(d / "latin1.csv"),
         "csv": {"delimiter": ";", "encoding": "latin-1"}},
        {"name": "nohdr", "path": str(d / "noheader.csv"),
         "csv": {"header": False, "delimiter": "|"}},
        {"name": "compressed", "path": str(d / "*.csv.*")},
    ], "csv")  # fmt: skip
    report = _ingest(project)
    assert report.ok, report.failures()
    con = project.lake.connect()
    names = lambda t: sorted(  # noqa: E731
        r[0] for r in con.execute(
            f"SELECT * EXCLUDE (_load_id, _source_file, _ingested_at) FROM lake.files.{t}"
        ).fetchall() for r in [r[1:]]
    )  # fmt: skip
    assert names("bom") == ["Ana", "Zoë"]
    assert names("latin") == ["Jürgen", "Åsa"]
    assert names("nohdr") == ["Bo", "Cy"]
    assert names("compressed") == ["Dee", "Quoted, name", "Zed"]
    cols = [r[0] for r in con.execute(
        "DESCRIBE FROM lake.files.bom").fetchall()]  # fmt: skip
    assert cols[:2] == ["id", "name"]  # the BOM is not part of the first column name


def test_ragged_csv_rows_are_quarantined_with_file_line_and_reason(tmp_path: Path) -> None:
    src = tmp_path / "in" / "sensors.csv"
    src.parent.mkdir()
    src.write_text(
        "sensor_id,reading\n"
        "1,20.5\n"
        "2\n"            # line 3: missing column
        "3,21.0,extra\n"  # line 4: too many
        "4,19.9\n"
    )  # fmt: skip
    project = _project(tmp_path, [{"name": "sensors", "path": str(src)}], "csv")
    report = _ingest(project)
    assert report.ok
    assert raw_rows(project, "files", "sensors") == 2
    rejected = _quarantine(project, "sensors")
    assert [(r[1], r[2]) for r in rejected] == [(3, "MISSING COLUMNS"), (4, "TOO MANY COLUMNS")]
    assert all(r[0] == str(src) for r in rejected)
    assert rejected[1][4] == "3,21.0,extra"
    # landed + quarantined = read
    assert report.tables[0].rows + report.tables[0].quarantined == 4


def test_json_lines_and_arrays_keep_nesting_and_never_truncate(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    (d / "clicks.jsonl").write_text(
        '{"id": 1, "ctx": {"page": "/a", "tags": ["x"]}, "value": 1}\n'
        '{"id": 2, "ctx": {"page": "/b", "tags": []}, "value": "n/a"}\n'
        "{not json\n"
        '{"id": 3, "ctx": {"page": "/c", "tags": ["y", "z"]}, "value": 2.5}\n'
        "\n"
    )
    (d / "catalog.json").write_text(json.dumps([{"sku": "A", "price": 1.5}, {"sku": "B"}]))
    project = _project(tmp_path, [
        {"name": "clicks", "path": str(d / "*.jsonl")},
        {"name": "catalog", "path": str(d / "catalog.json")},
    ], "json")  # fmt: skip
    report = _ingest(project)
    assert report.ok, report.failures()
    con = project.lake.connect()
    rows = con.execute(
        "SELECT id, ctx.page, len(ctx.tags), value::VARCHAR, typeof(value) "
        "FROM lake.files.clicks ORDER BY id"
    ).fetchall()
    assert rows == [
        (1, "/a", 1, "1", "JSON"), (2, "/b", 0, '"n/a"', "JSON"), (3, "/c", 2, "2.5", "JSON")
    ]  # fmt: skip
    rejected = _quarantine(project, "clicks")
    assert [(r[1], r[2], r[4]) for r in rejected] == [(3, "INVALID JSON", "{not json")]
    assert raw_rows(project, "files", "catalog") == 2


@pytest.mark.parametrize("lake_kind", ["local", "s3"])
def test_files_from_an_s3_prefix_and_parquet(
    lake_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    local = tmp_path / "in" / "inventory.parquet"
    local.parent.mkdir()
    duckdb.sql(f"COPY (SELECT range AS sku_id, range * 2 AS on_hand FROM range(100)) "
               f"TO '{local}'")  # fmt: skip
    if lake_kind == "local":
        project = _project(tmp_path, [{"name": "inventory", "path": str(local)}], "parquet")
    else:
        bucket, env = request.getfixturevalue("s3_bucket")
        from tests.seaweedfs import s3_client

        s3_client(env).upload_file(str(local), bucket, "incoming/inventory/part-1.parquet")
        project = _project(
            tmp_path, [{"name": "inventory", "path": f"s3://{bucket}/incoming/inventory/*.parquet"}],
            "parquet", lake_url=f"s3://{bucket}/lake", env=env,
        )  # fmt: skip
    report = _ingest(project)
    assert report.ok, report.failures()
    assert raw_rows(project, "files", "inventory") == 100
    again = _ingest(project)  # same file, same content: skipped
    assert again.ok and again.rows == 0 and again.tables[0].batches == []


def test_a_column_that_turns_to_text_late_lands_as_text(tmp_path: Path) -> None:
    src = tmp_path / "in" / "catalog.csv"
    src.parent.mkdir()
    lines = ["sku,code,price"] + [f"{i},{i},{i}.5" for i in range(60_000)]
    lines += ["60000,AB-12,1.5", "60001,7,not a price", "60002,8"]  # last: ragged
    src.write_text("\n".join(lines) + "\n")
    project = _project(tmp_path, [{"name": "catalog", "path": str(src)}], "csv")
    report = _ingest(project)
    assert report.ok
    con = project.lake.connect()
    types = dict(
        con.execute("SELECT column_name, column_type FROM (DESCRIBE lake.files.catalog)").fetchall()
    )
    assert types["sku"] == "BIGINT"  # the columns that fit keep their inferred type
    assert types["code"] == "VARCHAR" and types["price"] == "VARCHAR"
    texts = con.execute(
        "SELECT code, price FROM lake.files.catalog WHERE sku >= 60000 ORDER BY sku"
    ).fetchall()
    assert texts == [("AB-12", "1.5"), ("7", "not a price")]
    assert report.tables[0].rows == 60_002 and report.tables[0].quarantined == 1
    assert [r[2] for r in _quarantine(project, "catalog")] == ["MISSING COLUMNS"]


def test_a_changed_file_lands_again_as_a_new_batch(tmp_path: Path) -> None:
    src = tmp_path / "in" / "prices.csv"
    src.parent.mkdir()
    src.write_text("sku,price\n1,2.5\n")
    project = _project(tmp_path, [{"name": "prices", "path": str(src)}], "csv")
    assert _ingest(project).rows == 1
    src.write_text("sku,price\n1,2.75\n2,3.0\n")
    report = _ingest(project)
    assert report.rows == 2 and len(report.tables[0].batches) == 1
    assert raw_rows(project, "files", "prices") == 3  # both versions; staging picks the latest


def test_a_file_reverted_to_earlier_content_lands_again(tmp_path: Path) -> None:
    """What counts is the content last landed for a file, not every content ever seen."""
    src = tmp_path / "in" / "prices.csv"
    src.parent.mkdir()
    project = _project(tmp_path, [{"name": "prices", "path": str(src)}], "csv")
    for content, expected in [("A", 1), ("B", 1), ("A", 1), ("A", 0)]:
        src.write_text(f"sku,price\n1,{ {'A': 2.5, 'B': 3.5}[content] }\n")
        report = _ingest(project)
        assert report.ok and len(report.tables[0].batches) == expected, content
    con = project.lake.connect()
    latest = con.execute(
        "SELECT price FROM lake.files.prices ORDER BY snapshot_id DESC LIMIT 1"
    ).fetchone()
    assert latest == (2.5,)  # A, landed again after B


def test_a_moved_project_re_lands_nothing(tmp_path: Path) -> None:
    """A file's identity is its path below the glob's root and its content: the project
    moved (or mounted at another path in a container) keeps its lake and lands nothing
    again. Its catalog follows the folder, for dbt and plain DuckDB too."""
    first, moved = tmp_path / "first", tmp_path / "moved"
    (first / "in" / "2026").mkdir(parents=True)
    (first / "in" / "2026" / "orders.csv").write_text(
        "id,v\n" + "".join(f"{i},{i}\n" for i in range(500))
    )
    spec = {"lake": {"url": "lake"},
            "sources": [{"name": "files", "kind": "csv",
                         "tables": [{"name": "orders", "path": "in/*/*.csv"}]}]}  # fmt: skip
    (first / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    project = load_project(first / "lakehouse.yml", env={})
    assert _ingest(project).rows == 500
    first.rename(moved)

    project = load_project(moved / "lakehouse.yml", env={})
    again = _ingest(project)
    assert again.ok and again.rows == 0, again.failures()
    assert raw_rows(project, "files", "orders") == 500
    # what dbt and an analyst attach: no DATA_PATH of their own
    plain = duckdb.connect(config=connection_config())
    plain.execute(f"ATTACH 'ducklake:sqlite:{moved}/lake/catalog.sqlite' AS l (READ_ONLY)")
    assert plain.execute("SELECT count(*) FROM l.files.orders").fetchone() == (500,)
    (moved / "in" / "2026" / "orders.csv").write_text("id,v\n1,changed\n")
    assert _ingest(project).rows == 1  # a changed file still lands again


def test_tail_mode_lands_appended_whole_lines_from_the_committed_offset(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    project = _project(tmp_path, [{"name": "events", "path": str(log), "tail": True}], "json")

    def line(i: int) -> str:
        return json.dumps({"id": i, "kind": "click"}) + "\n"

    log.write_text(line(1) + line(2) + line(3) + line(4)[:9])  # the writer is mid-line
    assert _ingest(project).rows == 3
    with log.open("a") as f:  # the writer goes on: the rest of 4, a bad line, more
        f.write(line(4)[9:] + line(5) + "{not json\n" + line(7))
    report = _ingest(project)
    assert report.rows == 3 and report.ok
    [(where, number, error_type, _, raw)] = _quarantine(project, "events")
    start = len(line(1) + line(2) + line(3))
    assert where == f"{log} bytes {start}-{log.stat().st_size}" and number == 3
    assert (error_type, raw) == ("INVALID JSON", "{not json")
    assert _ingest(project).rows == 0  # nothing new: not even re-read
    con = project.lake.connect()
    ids = con.execute("SELECT id FROM lake.files.events ORDER BY id").fetchall()
    offsets = con.execute(
        "SELECT input->>'offset_start', input->>'offset_end' FROM lake._lakehouse.batches "
        "ORDER BY committed_at").fetchall()  # fmt: skip
    con.close()
    assert [i for (i,) in ids] == [1, 2, 3, 4, 5, 7]
    assert offsets == [("0", str(start)), (str(start), str(log.stat().st_size))]

    log.write_text(line(100) + line(101))  # rotated: a new file under the same name
    assert _ingest(project).rows == 2
    assert raw_rows(project, "files", "events") == 8
