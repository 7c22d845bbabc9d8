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


def test_a_suite_gx_wrote_as_json_is_read(tmp_path: Path) -> None:
    """GX's own JSON (`suite.to_json_dict()`): its expectations gate the table its name
    says, the same as the YAML suite; severity and meta kept."""
    import json

    import great_expectations as gx

    suite = gx.ExpectationSuite(name="raw__shop__orders", expectations=[
        gx.expectations.ExpectColumnValuesToNotBeNull(column="order_id"),
        gx.expectations.ExpectColumnValuesToBeBetween(column="amount", min_value=0,
                                                      severity="warning"),
    ])  # fmt: skip
    folder = tmp_path / "suites" / "raw"
    folder.mkdir(parents=True)
    (folder / "raw__shop__orders.json").write_text(json.dumps(suite.to_json_dict(), default=str))
    [loaded] = load_suites(tmp_path, "raw")
    assert loaded.target == "shop.orders"
    assert [(e.type, e.severity) for e in loaded.expectations] == [
        ("expect_column_values_to_not_be_null", "critical"),
        ("expect_column_values_to_be_between", "warning"),
    ]
    assert len(loaded.to_gx().expectations) == 2


def test_a_json_suite_with_no_table_is_refused_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "suites" / "raw"
    folder.mkdir(parents=True)
    (folder / "mine.json").write_text('{"name": "mine", "expectations": []}')
    with pytest.raises(SuiteError, match=r"mine\.json: GX suite 'mine': which table"):
        load_suites(tmp_path, "raw")
    (folder / "mine.json").write_text('{"rows": 1}')
    with pytest.raises(SuiteError, match=r"mine\.json: not a GX expectation suite"):
        load_suites(tmp_path, "raw")


@pytest.mark.parametrize(
    ("low", "high", "integral", "expected"),
    [
        (1, 5, True, (0, 7)),  # ratings 1-5: room both sides, never below zero
        (0.0, 100.0, False, (0, 150)),  # an amount: not negative
        (-10, 10, True, (-20, 20)),
        (7, 7, True, (6, 8)),  # one value seen: 10% of it
    ],
)
def test_suggested_ranges_leave_room(low: float, high: float, integral: bool,
                                     expected: tuple) -> None:  # fmt: skip
    from expectations.suggest import widened

    assert widened(low, high, integral) == expected
