"""The HTTP API source against a real local server that misbehaves like real APIs."""

from __future__ import annotations

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


def test_pages_retries_rate_limit_and_transient_faults(tmp_path: Path) -> None:
    with VendorApi(45) as api:
        api.fail_once = {"page=2": 500, "page=3": 429, "page=5": (429, {}),
                         "page=1": (503, {"Retry-After": "soon"})}  # fmt: skip
        api.malformed_once = {"page=4"}  # an HTML error page behind a 200
        api.drop_once = {"page=6"}  # the connection closes mid-body
        project = _project(tmp_path, api, [REVIEWS], rate_limit_per_s=20)
        report = _ingest(project)
        assert report.ok, report.failures()
        assert raw_rows(project, "vendor", "reviews") == 45  # every page, once
        [table] = report.tables
        assert table.quarantined == 0
        for page in range(1, 7):
            tries = [s for _, p, s in api.log if f"page={page}&" in p + "&"]
            assert len(tries) == 2 and tries[-1] == 200, (page, tries)
        assert len(api.log) == 12  # pages 1-5 and the empty page 6, each tried twice
        t429 = next(t for t, p, s in api.log if "page=3" in p and s == 429)
        t_retry = next(t for t, p, s in api.log if "page=3" in p and s == 200)
        assert t_retry - t429 >= 0.7  # Retry-After: 1 was honoured (wide margin: jitter)
        # 20/s: 50 ms apart on average over the whole run; single gaps jitter, the total
        # does not (a 15 ms bound on one gap once failed at 14.98 ms)
        times = sorted(t for t, _, _ in api.log)
        assert times[-1] - times[0] >= 0.8 * 0.05 * (len(times) - 1)

    con = project.lake.connect()
    row = con.execute(
        "SELECT meta.ip, _source_file FROM lake.vendor.reviews WHERE review_id = 1",
    ).fetchone()
    assert row == ("10.0.0.1", f"{api.url}/reviews")  # nested JSON stays nested
    assert table_state(project, "vendor", "reviews").watermark == "2026-02-01T00:45:00Z"


def test_a_page_that_stays_bad_fails_the_table_and_keeps_its_position(tmp_path: Path) -> None:
    """A truncated page (HTTP 200) used to become one quarantined row while the cursor
    moved past it: its records were lost for good."""
    with VendorApi(45) as api:
        project = _project(tmp_path, api, [REVIEWS], max_retries=1)
        api.truncated = {"page=2"}
        [failure] = _ingest(project).failures()
        assert "page 2" in failure and "not JSON" in failure and "after 2 tries" in failure
        assert raw_rows(project, "vendor", "reviews") == 0
        assert table_state(project, "vendor", "reviews").watermark is None

        api.truncated = set()
        assert _ingest(project).rows == 45
        api.reviews += [api.review(i) for i in range(46, 71)]
        api.truncated = {"page=3"}  # of the incremental pages
        assert _ingest(project).failures()
        assert table_state(project, "vendor", "reviews").watermark == "2026-02-01T00:45:00Z"
        api.truncated = set()
        assert _ingest(project).rows == 25
        con = project.lake.connect()
        counts = con.execute(
            "SELECT count(*), count(DISTINCT review_id), max(review_id) FROM lake.vendor.reviews"
        ).fetchone()
        assert counts == (70, 70, 70)


@pytest.mark.parametrize(
    ("table", "rewrite", "says"),
    [
        ({"endpoint": "/reviews", "records_path": "data", "params": {"per_page": 10},
          "paginate": {"type": "page"}}, {"page=3": {"page": "2"}},
         "page 3): the page repeats page 2"),
        ({"endpoint": "/offset", "records_path": "data",
          "paginate": {"type": "offset", "limit": 5}}, {"offset=10": {"offset": "5"}},
         "page 3): the page repeats page 2"),
        ({"endpoint": "/link", "params": {"per_page": 6}, "paginate": {"type": "link_header"}},
         {"page=3": {"page": "2"}}, "page 3): the page repeats page 2"),
        ({"endpoint": "/cursor", "records_path": "data", "params": {"limit": 4},
          "paginate": {"type": "cursor", "cursor_path": "paging.next"}},
         {"cursor=8": {"cursor": "4", "limit": "0"}}, "page 3): the API sent cursor 4 again"),
    ],
    ids=["page", "offset", "link", "cursor"],
)  # fmt: skip
def test_a_repeated_page_or_a_loop_fails_the_table(
    tmp_path: Path, table: dict[str, Any], rewrite: dict[str, dict[str, str]], says: str
) -> None:
    """A repeated page used to land its records twice and skip the next ones, exit 0."""
    with VendorApi(23) as api:
        api.rewrite = rewrite
        project = _project(tmp_path, api, [{"name": "t", **table}])
        [failure] = _ingest(project).failures()
        assert says in failure
        assert len(api.log) == 3  # it stopped there, not at max_pages
        assert raw_rows(project, "vendor", "t") == 0


def test_offset_pages_survive_a_capped_page_size_and_stop_at_the_total(tmp_path: Path) -> None:
    """An API that serves at most 5 records whatever `limit` asks used to land 5 of 23."""
    with VendorApi(23) as api:
        api.max_page_size = 5
        offset = {"endpoint": "/offset", "records_path": "data",
                  "paginate": {"type": "offset", "limit": 10}}  # fmt: skip
        project = _project(tmp_path, api, [
            {"name": "until_empty", **offset},
            {"name": "until_total", **offset,
             "paginate": {"type": "offset", "limit": 10, "total_path": "total"}},
            {"name": "pages", "endpoint": "/reviews", "records_path": "data",
             "params": {"per_page": 10}, "paginate": {"type": "page"}},
        ])  # fmt: skip
        report = _ingest(project)
        assert report.ok, report.failures()
        con = project.lake.connect()
        for name in ("until_empty", "until_total", "pages"):
            assert con.execute(
                f"SELECT count(*), count(DISTINCT review_id) FROM lake.vendor.{name}"
            ).fetchone() == (23, 23), name
        offsets = [p for _, p, _ in api.log if p.startswith("/offset")]
        assert len(offsets) == 5 + 6  # ceil(23 / 5), and one more to see the empty page


def test_a_next_link_to_another_origin_is_not_followed(tmp_path: Path) -> None:
    """It would carry the bearer token to a stranger."""
    with VendorApi(23) as api:
        stranger = api.url.replace("127.0.0.1", "localhost")
        api.link_origin = stranger
        project = _project(tmp_path, api, [
            {"name": "by_link", "endpoint": "/link", "params": {"per_page": 6},
             "paginate": {"type": "link_header"}}])  # fmt: skip
        [failure] = _ingest(project).failures()
        assert f"the next link leads to {stranger}: not followed" in failure
        assert len(api.arrivals) == 1
        assert raw_rows(project, "vendor", "by_link") == 0


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
            max_retries=0,
        )  # fmt: skip
        [failure] = _ingest(project).failures()
        assert API_KEY not in failure and f"{api.url}/reviews page 1" in failure
        api.malformed = set()
        assert _ingest(project).rows == 5
        con = project.lake.connect()
        files = con.execute("SELECT DISTINCT _source_file FROM lake.vendor.reviews").fetchall()
        assert files == [(f"{api.url}/reviews",)]  # no key in the lineage
        assert all(f"api_key={API_KEY}" in p for _, p, _ in api.log)  # yet it was sent
        columns = con.execute(
            "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = 'lake'"
        ).fetchall()
        assert len(columns) > 20  # raw, batch log, rejected rows, run records...
        for schema, table, column in columns:  # every column of every table, not one
            hits = con.execute(
                f'SELECT count(*) FROM lake."{schema}"."{table}" '
                f'WHERE contains("{column}"::VARCHAR, ?)', [API_KEY]
            ).fetchone()  # fmt: skip
            assert hits == (0,), (schema, table, column)


def test_an_api_that_only_sends_garbage_fails_clearly(tmp_path: Path) -> None:
    with VendorApi(50) as api:
        api.malformed = {"*"}
        project = _project(tmp_path, api, [REVIEWS], max_retries=2)
        [failure] = _ingest(project).failures()
        assert "a page that is not JSON ('<html>502 Bad Gateway</html>') after 3 tries" in failure
        assert f"{api.url}/reviews page 1" in failure
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
