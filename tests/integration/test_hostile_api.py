"""A hostile API, each pagination style against each fault: transient faults are retried
and every record lands once; a fault that stays, a repeated page or a loop fails the table
naming the page, and nothing lands (the cursor stays where it was).

`make test` runs the page-number style; `make test-slow` every style.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest import run_ingest
from pipeline.config import load_project
from tests.integration.helpers import raw_rows
from tests.integration.vendor_api import TOKEN, VendorApi

RECORDS = 45
STYLES: dict[str, dict[str, Any]] = {
    "page": {"endpoint": "/reviews", "records_path": "data", "params": {"per_page": 10},
             "paginate": {"type": "page"}},
    "offset": {"endpoint": "/offset", "records_path": "data",
               "paginate": {"type": "offset", "limit": 10}},
    "cursor": {"endpoint": "/cursor", "records_path": "data", "params": {"limit": 10},
               "paginate": {"type": "cursor", "cursor_path": "paging.next"}},
    "link": {"endpoint": "/link", "params": {"per_page": 10},
             "paginate": {"type": "link_header"}},
}  # fmt: skip
SECOND = {"page": "page=2", "offset": "offset=10", "cursor": "cursor=10", "link": "page=2"}
THIRD_AS_SECOND = {
    "page": {"page=3": {"page": "2"}}, "offset": {"offset=20": {"offset": "10"}},
    "cursor": {"cursor=20": {"cursor": "10"}}, "link": {"page=3": {"page": "2"}},
}  # fmt: skip

# fault -> (how to set it on the API for the second page, what the run must end with:
# "lands" or the words of the table's failure)
FAULTS: dict[str, tuple[Any, str]] = {
    "500 once": (lambda api, m: api.fail_once.update({m: 500}), "lands"),
    "503 with Retry-After as a date": (
        lambda api, m: api.fail_once.update(
            {m: (503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})}), "lands"),
    "429 with Retry-After 0.2": (
        lambda api, m: api.fail_once.update({m: (429, {"Retry-After": "0.2"})}), "lands"),
    "429 without Retry-After": (lambda api, m: api.fail_once.update({m: (429, {})}), "lands"),
    "429 with Retry-After soon": (
        lambda api, m: api.fail_once.update({m: (429, {"Retry-After": "soon"})}), "lands"),
    "slow once": (lambda api, m: api.slow_once.add(m), "lands"),
    "HTML behind a 200, once": (lambda api, m: api.malformed_once.add(m), "lands"),
    "dropped mid-body, once": (lambda api, m: api.drop_once.add(m), "lands"),
    "500 every time": (lambda api, m: api.always.update({m: 500}), "HTTP 500 after 3 tries"),
    "truncated every time": (lambda api, m: api.truncated.add(m), "not JSON"),
    "401 on page 2": (lambda api, m: api.always.update({m: 401}), "HTTP 401"),
}  # fmt: skip


def _cases(style: str, marks: tuple[Any, ...] = ()) -> list[Any]:
    cases = [pytest.param(style, fault, id=f"{style}-{fault}", marks=marks) for fault in FAULTS]
    cases.append(pytest.param(style, "repeated page", id=f"{style}-repeated", marks=marks))
    return cases


CASES = _cases("page") + [
    case for style in ("offset", "cursor", "link") for case in _cases(style, (pytest.mark.slow,))
]


@pytest.mark.parametrize(("style", "fault"), CASES)
def test_a_hostile_api(style: str, fault: str, tmp_path: Path) -> None:
    with VendorApi(RECORDS) as api:
        if fault == "repeated page":
            api.rewrite = THIRD_AS_SECOND[style]
            expect = "page 3): the page repeats page 2"
        else:
            set_fault, expect = FAULTS[fault]
            set_fault(api, SECOND[style])
        spec = {
            "lake": {"url": str(tmp_path / "lake")},
            "sources": [{
                "name": "vendor", "kind": "http",
                "http": {"base_url": api.url, "auth": {"type": "bearer", "token": TOKEN},
                         "backoff_s": 0.05, "timeout_s": 0.5, "max_retries": 2},
                "tables": [{"name": "t", **STYLES[style]}],
            }],
        }  # fmt: skip
        (tmp_path / "lakehouse.yml").write_text(yaml.safe_dump(spec))
        project = load_project(tmp_path / "lakehouse.yml", env={})
        report = run_ingest(project.lake, project.spec.sources, project.base_dir)
    if expect == "lands":
        assert report.ok, report.failures()
        con = project.lake.connect()
        assert con.execute(
            "SELECT count(*), count(DISTINCT review_id) FROM lake.vendor.t"
        ).fetchone() == (RECORDS, RECORDS)
    else:
        [failure] = report.failures()
        assert expect in failure, failure
        assert fault == "repeated page" or "page 2)" in failure, failure
        assert raw_rows(project, "vendor", "t") == 0
