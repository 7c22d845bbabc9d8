"""Property tests (hypothesis): whatever the CSV or JSON Lines, records read = landed +
quarantined, and every landed value equals the one written.

`make test` runs a few examples of each; `make test-slow` a few hundred.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import run_ingest
from pipeline.config import load_project

# text as people type it: any character but NUL and lone surrogates (quotes, delimiters,
# newlines, emoji and all)
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"),
               min_size=1, max_size=12)  # fmt: skip
VALUE = st.one_of(st.none(), TEXT)
ROWS = st.lists(st.tuples(VALUE, VALUE), min_size=1, max_size=30)
BAD = st.lists(st.integers(min_value=0, max_value=29), max_size=4, unique=True)
RECORD = st.fixed_dictionaries({
    "name": VALUE,
    "score": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    "tags": st.lists(TEXT, max_size=3),
    "meta": st.fixed_dictionaries({"note": VALUE}),
})  # fmt: skip
FEW = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
MANY = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def _csv_field(value: str | None) -> str:
    """NULL is an empty field; text is always quoted (so "" would be an empty string)."""
    return "" if value is None else '"' + value.replace('"', '""') + '"'


def _land(kind: str, name: str, data: bytes, options: dict[str, Any]) -> tuple[Any, Any]:
    root = Path(tempfile.mkdtemp(prefix="lakehouse-prop-"))
    (root / "in").mkdir()
    (root / "in" / name).write_bytes(data)
    spec = {"lake": {"url": "lake"},
            "sources": [{"name": "p", "kind": kind,
                         "tables": [{"name": "t", "path": f"in/{name}", **options}]}]}  # fmt: skip
    (root / "lakehouse.yml").write_text(yaml.safe_dump(spec, sort_keys=False))  # (columns)
    project = load_project(root / "lakehouse.yml", env={})
    report = run_ingest(project.lake, project.spec.sources, project.base_dir)
    assert report.ok, report.failures()
    return project, report.tables[0]


def check_csv(rows: list[tuple[str | None, str | None]], bad: list[int]) -> None:
    lines = ["id,a,b"]
    good: list[tuple[int, str | None, str | None]] = []
    for i, (a, b) in enumerate(rows):
        if i in bad:  # a ragged row: one field too many
            lines.append(f"{i},{_csv_field(a)},{_csv_field(b)},extra")
        else:
            lines.append(f"{i},{_csv_field(a)},{_csv_field(b)}")
            good.append((i, a, b))
    project, table = _land("csv", "t.csv", ("\n".join(lines) + "\n").encode(),
                           # the dialect declared: a two-line file leaves a sniffer guessing
                           {"csv": {"delimiter": ",", "quote": '"', "escape": '"',
                                    "columns": {"id": "BIGINT", "a": "VARCHAR",
                                                "b": "VARCHAR"}}})  # fmt: skip
    assert table.rows + table.quarantined == len(rows)
    assert table.quarantined == len([i for i in bad if i < len(rows)])
    if table.rows:
        con = project.lake.connect()
        assert con.execute("SELECT id, a, b FROM lake.p.t ORDER BY id").fetchall() == good


def check_jsonl(records: list[dict[str, Any]], bad: list[int]) -> None:
    lines, good = [], []
    for i, record in enumerate(records):
        if i in bad:
            lines.append(json.dumps({"id": i, **record})[:-1])  # cut short: invalid
        else:
            lines.append(json.dumps({"id": i, **record}))
            good.append({"id": i, **record})
    project, table = _land("json", "t.jsonl", ("\n".join(lines) + "\n").encode(), {})
    assert table.rows + table.quarantined == len(records)
    assert table.quarantined == len([i for i in bad if i < len(records)])
    if table.rows:
        con = project.lake.connect()
        landed = con.execute(
            "SELECT to_json(t)::VARCHAR FROM (SELECT * EXCLUDE (_load_id, _source_file, "
            "_ingested_at) FROM lake.p.t ORDER BY id) t"
        ).fetchall()
        assert [_normal(json.loads(r[0])) for r in landed] == [_normal(g) for g in good]


def _normal(record: dict[str, Any]) -> dict[str, Any]:
    """Equal values whatever the inference did with all-NULL or empty columns."""
    out = {k: v for k, v in record.items() if v not in (None, [], {})}
    if isinstance(out.get("meta"), dict):
        out["meta"] = {k: v for k, v in out["meta"].items() if v is not None} or None
        if out["meta"] is None:
            del out["meta"]
    return out


@FEW
@given(rows=ROWS, bad=BAD)
def test_csv_rows_read_equal_landed_plus_quarantined(rows: Any, bad: Any) -> None:
    check_csv(rows, bad)


@FEW
@given(records=st.lists(RECORD, min_size=1, max_size=20), bad=BAD)
def test_jsonl_lines_read_equal_landed_plus_quarantined(records: Any, bad: Any) -> None:
    check_jsonl(records, bad)


@pytest.mark.slow
@MANY
@given(rows=ROWS, bad=BAD)
def test_csv_properties_at_length(rows: Any, bad: Any) -> None:
    check_csv(rows, bad)


@pytest.mark.slow
@MANY
@given(records=st.lists(RECORD, min_size=1, max_size=20), bad=BAD)
def test_jsonl_properties_at_length(records: Any, bad: Any) -> None:
    check_jsonl(records, bad)
