from pathlib import Path

import pytest

from expectations import SuiteError, load_suites
from tests.conftest import REPO


def test_shipped_suites_load_as_gx_suites() -> None:
    raw = load_suites(REPO / "expectations", "raw")
    marts = load_suites(REPO / "expectations", "marts")
    assert {s.target for s in raw} >= {"shop.orders"}
    assert {s.target for s in marts} >= {"fct_orders"}
    gx_suite = raw[0].to_gx()
    assert len(gx_suite.expectations) == len(raw[0].expectations)
    severities = {e.severity for e in raw[0].expectations}
    assert severities == {"critical", "warning"}


def _suite(tmp_path: Path, body: str) -> Path:
    folder = tmp_path / "suites" / "raw"
    folder.mkdir(parents=True)
    (folder / "s.yml").write_text(body)
    return tmp_path


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "name: s\ntarget: a.b\nexpectations:\n  - type: expect_nonsense\n",
            r"s\.yml: expect_nonsense",
        ),
        (
            "name: s\ntarget: a.b\nexpectations:\n  - type: expect_column_values_to_not_be_null\n"
            "    kwargs: {column: x}\n    severity: fatal\n",
            r"expectations\[0\]: severity",
        ),
        ("name: s\nexpectations: []\n", "missing key 'target'"),
        ("name: s\ntarget: t\nexpectations:\n  - kwargs: {}\n", r"expectations\[0\]"),
    ],
)
def test_suite_errors_name_the_file(tmp_path: Path, body: str, expected: str) -> None:
    with pytest.raises(SuiteError, match=expected):
        load_suites(_suite(tmp_path, body), "raw")


def test_every_expectation_of_a_suite_is_kept() -> None:
    """GX upserts expectation configurations by domain: several SQL (unexpected rows)
    expectations of a suite would collapse into one. Every one must stay."""
    for gate in ("raw", "marts"):
        for suite in load_suites(REPO / "expectations", gate):
            assert len(suite.to_gx().expectations) == len(suite.expectations), suite.name
