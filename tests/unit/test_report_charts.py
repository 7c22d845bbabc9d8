"""The report's charts: series of a line chart are drawn at their own values, bars stack."""

from __future__ import annotations

from pipeline.report import _chart


def test_lines_are_not_stacked_and_bars_are() -> None:
    rows = [
        {"d": "2026-03-14", "measure": m, "value": v} for m, v in (("orders", 20), ("rate", 95))
    ]
    line = _chart(rows, "line", "d", "value", color="measure").to_dict()
    bars = _chart(rows, "bar", "d", "value", color="measure").to_dict()
    assert line["encoding"]["y"].get("stack") is None
    assert bars["encoding"]["y"].get("stack") is True
