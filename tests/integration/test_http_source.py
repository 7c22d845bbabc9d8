"""The HTTP API source against a real local server that misbehaves like real APIs."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest import run_ingest
from pipeline.config import Project, load_project
from tests.integration.helpers import raw_rows, table_state
from tests.integration.vendor_api import API_KEY, PASSWORD, TOKEN, USER, VendorApi


def _project(root: Path, api: VendorApi, tables: list[dict[str, Any]],
             auth: dict[str, Any] | None = None, **http: Any) -> Project:  # fmt: skip
    spec = {
        "lake": {"url": str(root / "lake")},
        "sources": [{
            "name": "vendor", "kind": "http",
            "http": {"base_url": api.url, "auth": auth or {"type": "bearer",
                                                            "token": "${VENDOR_TOKEN}"},
                     "backoff_s": 0.05, **http},
            "tables": tables,
        }],
    }  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    (root / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    return load_project(root / "lakehouse.yml", env={"VENDOR_TOKEN": TOKEN})


def _ingest(project: Project):
    return run_ingest(project.lake, project.spec.sources, project.base_dir)


REVIEWS = {"name": "reviews", "endpoint": "/reviews", "records_path": "data",
           "params": {"per_page": 10}, "paginate": {"type": "page"},
           "cursor": "updated_at", "cursor_param": "updated_since"}  # fmt: skip


def test_pages_retries_rate_limit_and_a_malformed_page(tmp_path: Path) -> None:
    with VendorApi(45) as api:
        api.fail_once = {"page=2": 500, "page=3": 429}
        api.malformed = {"page=4"}
        project = _project(tmp_path, api, [REVIEWS], rate_limit_per_s=20)
        report = _ingest(project)
        assert report.ok, report.failures()
        assert raw_rows(project, "vendor", "reviews") == 35  # 45 minus the bad page's 10
        [table] = report.tables
        assert table.quarantined == 1
        statuses = [s for _, p, s in api.log if "page=2" in p or "page=3" in p]
        assert statuses == [500, 200, 429, 200]  # each retried, once
        t429 = next(t for t, p, s in api.log if s == 429)
        t_retry = next(t for t, p, s in api.log if "page=3" in p and s == 200)
        assert t_retry - t429 >= 0.95  # Retry-After: 1 was honoured
        times = [t for t, _, _ in api.log]
        # 20/s: 50 ms apart, asserted with a wide margin (the server's clock readings
        # jitter with scheduling; a 15 ms bound at 50/s once failed at 14.98 ms)
        assert min(b - a for a, b in itertools.pairwise(times)) >= 0.03

    con = project.lake.connect()
    q = con.execute(
        "SELECT source_file, line, error_type, raw_record FROM lake._lakehouse.rejected_rows "
        "WHERE source = 'vendor' AND table_name = 'reviews'",
    ).fetchall()
    assert q == [(f"{api.url}/reviews?per_page=10&page=4", 4, "INVALID PAGE",
                  "<html>502 Bad Gateway</html>")]  # fmt: skip
    row = con.execute(
        "SELECT meta.ip, _source_file FROM lake.vendor.reviews WHERE review_id = 1",
    ).fetchone()
    assert row == ("10.0.0.1", f"{api.url}/reviews")  # nested JSON stays nested
    assert table_state(project, "vendor", "reviews").watermark is not None


def test_incremental_by_cursor_lands_only_what_is_new(tmp_path: Path) -> None:
    with VendorApi(25) as api:
        project = _project(tmp_path, api, [REVIEWS])
        assert _ingest(project).rows == 25
        state = table_state(project, "vendor", "reviews")
        assert state.watermark == "2026-02-01T00:25:00Z"  # as the API sent it

        again = _ingest(project)  # nothing newer: nothing lands
        assert again.ok and again.rows == 0
        assert "updated_since=2026-02-01T00%3A25%3A00Z" in api.log[-1][1]

        api.reviews += [api.review(26), api.review(27)]
        assert _ingest(project).rows == 2
        assert raw_rows(project, "vendor", "reviews") == 27


def test_offset_cursor_and_link_header_pagination(tmp_path: Path) -> None:
    with VendorApi(23) as api:
        project = _project(tmp_path, api, [
            {"name": "by_offset", "endpoint": "/offset", "records_path": "data",
             "paginate": {"type": "offset", "limit": 5}},
            {"name": "by_cursor", "endpoint": "/cursor", "records_path": "data",
             "params": {"limit": 4},
             "paginate": {"type": "cursor", "cursor_path": "paging.next"}},
            {"name": "by_link", "endpoint": "/link", "params": {"per_page": 6},
             "paginate": {"type": "link_header"}},
        ])  # fmt: skip
        report = _ingest(project)
        assert report.ok, report.failures()
        for table in ("by_offset", "by_cursor", "by_link"):
            con = project.lake.connect()
            ids = con.execute(
                f"SELECT count(*), count(DISTINCT review_id) FROM lake.vendor.{table}",
            ).fetchone()
            assert ids == (23, 23), table
        # the same content again: nothing lands
        assert _ingest(project).rows == 0


def test_api_key_in_query_is_never_landed_or_printed(tmp_path: Path) -> None:
    with VendorApi(5) as api:
        api.malformed = {"page=1"}
        project = _project(
            tmp_path, api, [{**REVIEWS, "cursor": None, "cursor_param": None}],
            auth={"type": "api_key", "name": "api_key", "value": API_KEY, "in": "query"},
        )  # fmt: skip
        report = _ingest(project)
        assert report.ok
        con = project.lake.connect()
        q = con.execute(
            "SELECT source_file FROM lake._lakehouse.rejected_rows",
        ).fetchall()
        assert q == [(f"{api.url}/reviews?per_page=10&page=1",)]  # no key in the lineage
        assert all(f"api_key={API_KEY}" in p for _, p, _ in api.log)  # yet it was sent


def test_an_api_that_only_sends_garbage_fails_clearly(tmp_path: Path) -> None:
    with VendorApi(50) as api:
        api.malformed = {"page=1", "page=2", "page=3"}
        project = _project(tmp_path, api, [REVIEWS])
        [failure] = _ingest(project).failures()
        assert "3 pages in a row are not JSON" in failure
        assert f"{api.url}/reviews page 3" in failure
        assert raw_rows(project, "vendor", "reviews") == 0


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "basic", "username": USER, "password": PASSWORD},
        {"type": "api_key", "name": "X-API-Key", "value": API_KEY, "in": "header"},
    ],
)
def test_basic_auth_and_api_key_header(tmp_path: Path, auth: dict[str, Any]) -> None:
    with VendorApi(12) as api:
        project = _project(tmp_path, api, [REVIEWS], auth=auth)
        report = _ingest(project)
        assert report.ok, report.failures()
        assert report.rows == 12


def test_connection_errors_and_timeouts_are_retried_then_named(tmp_path: Path) -> None:
    with VendorApi(1) as api:
        slow = _project(tmp_path / "slow", api,
                        [{"name": "slow", "endpoint": "/slow", "records_path": "data"}],
                        timeout_s=0.2, max_retries=1)  # fmt: skip
        [failure] = _ingest(slow).failures()
        assert "ReadTimeout after 2 tries" in failure and f"{api.url}/slow page 1" in failure
        assert api.arrivals.count("/slow") == 2
        closed_port = api.url  # the server goes away below
    gone = _project(tmp_path / "gone", api, [REVIEWS], max_retries=2)
    [failure] = _ingest(gone).failures()
    assert "ConnectionError after 3 tries" in failure
    assert f"{closed_port}/reviews page 1" in failure


def test_auth_failure_names_source_table_and_url(tmp_path: Path) -> None:
    with VendorApi(5) as api:
        project = _project(tmp_path, api, [REVIEWS], auth={"type": "bearer", "token": "wrong"})
        report = _ingest(project)
        [failure] = report.failures()
        assert failure.startswith("source 'vendor', table 'reviews'")
        assert f"{api.url}/reviews page 1" in failure and "HTTP 401" in failure
        assert raw_rows(project, "vendor", "reviews") == 0
