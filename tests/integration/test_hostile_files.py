"""A hostile file corpus: csv-spectrum with its expected values, and the files that used to
fail whole or land a batch nobody could read. Every row lands or is quarantined with its
line and reason; landed + quarantined = the records in the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest import run_ingest
from pipeline.config import Project, load_project

# csv-spectrum (github.com/max-mapper/csv-spectrum): file -> rows as text. An unquoted
# empty field is NULL (None) in a lake; a quoted one ("") is an empty string.
SPECTRUM: dict[str, tuple[str, list[tuple[Any, ...]]]] = {
    "comma_in_quotes": ('first,last,address,city,zip\nJohn,Doe,120 any st.,"Anytown, WW",08123\n',
                        [("John", "Doe", "120 any st.", "Anytown, WW", "08123")]),
    "empty": ('a,b,c\n1,"",""\n2,3,4\n', [("1", "", ""), ("2", "3", "4")]),
    "empty_crlf": ('a,b,c\r\n1,"",""\r\n2,3,4\r\n', [("1", "", ""), ("2", "3", "4")]),
    "escaped_quotes": ('a,b\n1,"ha ""ha"" ha"\n3,4\n', [("1", 'ha "ha" ha'), ("3", "4")]),
    "json": ('key,val\n1,"{""type"": ""Point"", ""coordinates"": [102.0, 0.5]}"\n',
             [("1", '{"type": "Point", "coordinates": [102.0, 0.5]}')]),
    "newlines": ('a,b,c\n1,2,3\n"Once upon \na time",5,6\n7,8,9\n',
                 [("1", "2", "3"), ("Once upon \na time", "5", "6"), ("7", "8", "9")]),
    "newlines_crlf": ('a,b,c\r\n1,2,3\r\n"Once upon \r\na time",5,6\r\n7,8,9\r\n',
                      [("1", "2", "3"), ("Once upon \r\na time", "5", "6"), ("7", "8", "9")]),
    "quotes_and_newlines": ('a,b\n1,"ha \n""ha"" \nha"\n3,4\n',
                            [("1", 'ha \n"ha" \nha'), ("3", "4")]),
    "simple": ("a,b,c\n1,2,3\n", [("1", "2", "3")]),
    "simple_crlf": ("a,b,c\r\n1,2,3\r\n", [("1", "2", "3")]),
    "utf8": ("a,b,c\n1,2,3\n4,5,ʤ\n", [("1", "2", "3"), ("4", "5", "ʤ")]),
    "location_coordinates": ('Contact Phone Number,Cities,Latitude,Longitude\n,"Acme",,\n',
                             [(None, "Acme", None, None)]),
}  # fmt: skip

DEEP = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000
# table -> (kind, file bytes, rows landed, [(line, error type)] quarantined)
HOSTILE: dict[str, tuple[str, bytes, int, list[tuple[int, str]]]] = {
    "field_over_2mb": ("csv", b"id,body\n1,short\n2," + b"x" * 3_000_000 + b"\n3,after\n", 3, []),
    "crlf_with_one_lf": ("csv", b"id,name\r\n1,a\r\n2,b\n3,c\r\n4,d\r\n", 4, []),
    "crlf_trailing_blank": ("csv", b"id,name\r\n1,a\r\n2,b\r\n\r\n", 2, []),
    "ragged": ("csv", b"id,name\n1,a\n2,b,extra\n3\n4,d\n", 2, [(3, "TOO MANY COLUMNS"),
                                                               (4, "MISSING COLUMNS")]),
    "bom": ("jsonl", b'\xef\xbb\xbf{"id": 1, "v": "a"}\n{"id": 2, "v": "b"}\n', 2, []),
    "duplicate_keys": ("jsonl", b'{"id": 1, "v": "a"}\n{"id": 2, "v": "b", "v": "c"}\n'
                       b'{"id": 3, "v": "d"}\n', 2, [(2, "DUPLICATE KEY")]),
    "invalid_utf8": ("jsonl", b'{"id": 1, "v": "a"}\n{"id": 2, "v": "\xff\xfe"}\n'
                     b'{"id": 3, "v": "d"}\n', 2, [(2, "INVALID UTF-8")]),
    "invalid_json": ("jsonl", b'{"id": 1, "v": "a"}\n{not json\n\n{"id": 3, "v": "d"}\n', 2,
                     [(2, "INVALID JSON")]),
    "nested_1000_deep": ("jsonl", f'{{"id": 1, "v": {DEEP}}}\n{{"id": 2, "v": {DEEP_OBJECT}}}\n'
                         .encode(), 2, []),
}  # fmt: skip


def _project(root: Path) -> Project:
    tables: dict[str, list[dict[str, Any]]] = {"csv": [], "json": []}
    for name, (text, _) in SPECTRUM.items():
        (root / "spectrum" / name).mkdir(parents=True)
        (root / "spectrum" / name / f"{name}.csv").write_bytes(text.encode())
        tables["csv"].append({"name": f"spectrum_{name}", "path": f"spectrum/{name}/*.csv",
                              "csv": {"all_varchar": True}})  # fmt: skip
    for name, (kind, data, _, _) in HOSTILE.items():
        (root / "hostile" / name).mkdir(parents=True)
        (root / "hostile" / name / f"{name}.{kind}").write_bytes(data)
        tables["csv" if kind == "csv" else "json"].append(
            {"name": name, "path": f"hostile/{name}/*.{kind}"}
        )
    sources = [{"name": f"{kind}_files", "kind": kind, "tables": t} for kind, t in tables.items()]
    spec = {"lake": {"url": "lake"}, "sources": sources}
    (root / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    return load_project(root / "lakehouse.yml", env={})


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Any]:
    project = _project(tmp_path_factory.mktemp("corpus"))
    report = run_ingest(project.lake, project.spec.sources, project.base_dir)
    assert report.ok, report.failures()
    return project, report


@pytest.mark.parametrize("name", SPECTRUM)
def test_csv_spectrum(name: str, landed: tuple[Project, Any]) -> None:
    project, _ = landed
    con = project.lake.connect()
    columns = [r[0] for r in con.execute(f"DESCRIBE lake.csv_files.spectrum_{name}").fetchall()
               if not r[0].startswith("_")]  # fmt: skip
    rows = con.execute(
        f"SELECT {', '.join(repr(c).replace(chr(39), chr(34)) for c in columns)} "
        f"FROM lake.csv_files.spectrum_{name} ORDER BY _source_file"
    ).fetchall()
    assert rows == SPECTRUM[name][1]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_files_land_their_good_rows(name: str, landed: tuple[Project, Any]) -> None:
    project, report = landed
    _, _, rows, quarantined = HOSTILE[name]
    [table] = [t for t in report.tables if t.table == name]
    assert (table.rows, table.quarantined) == (rows, len(quarantined))
    con = project.lake.connect()
    relation = f"lake.{'csv' if HOSTILE[name][0] == 'csv' else 'json'}_files.{name}"
    assert con.execute(f"SELECT count(*) FROM {relation}").fetchone() == (rows,)
    rejected = con.execute(
        "SELECT line, error_type, reason FROM lake._lakehouse.rejected_rows "
        "WHERE table_name = ? ORDER BY line", [name]
    ).fetchall()  # fmt: skip
    assert [(line, kind) for line, kind, _ in rejected] == quarantined
    assert all(reason for _, _, reason in rejected)  # each with its reason
    con.execute(f"SELECT * FROM {relation}").fetchall()  # and the batch reads back


def test_a_row_with_two_bad_values_counts_once(tmp_path: Path) -> None:
    """The count is of rows: landed + quarantined = the rows in the file (6 were counted
    for 4 bad rows when each bad value counted)."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "typed.csv").write_text("a,b\n1,2\nx,y\n3,z\n4,5\n")
    spec = {"lake": {"url": "lake"},
            "sources": [{"name": "files", "kind": "csv", "tables": [
                {"name": "typed", "path": "in/*.csv",
                 "csv": {"columns": {"a": "INTEGER", "b": "INTEGER"}}}]}]}  # fmt: skip
    (tmp_path / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    project = load_project(tmp_path / "lakehouse.yml", env={})
    [table] = run_ingest(project.lake, project.spec.sources, project.base_dir).tables
    assert (table.rows, table.quarantined) == (2, 2)
    con = project.lake.connect()
    lines = con.execute(
        "SELECT line, count(*) FROM lake._lakehouse.rejected_rows GROUP BY line ORDER BY line"
    ).fetchall()
    assert lines == [(3, 2), (4, 1)]  # every reason kept, each row counted once
