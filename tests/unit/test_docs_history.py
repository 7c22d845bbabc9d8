"""The Data Docs keep the last runs: results and pages of older runs are deleted."""

from __future__ import annotations

from pathlib import Path

from expectations.docs_history import history_dir, mark_warnings, record_run


def _result(site: Path, suite: str, run: int) -> str:
    rel = f"validations/{suite}/__none__/2026120{run}T000000.000000Z/batch"
    (site / f"{rel}.html").parent.mkdir(parents=True, exist_ok=True)
    (site / f"{rel}.html").write_text(
        '<i class="fas fa-times text-danger" aria-hidden="true"></i> Failed'
    )
    store = history_dir(site) / f"{rel.removeprefix('validations/')}.json"
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text("{}")
    return f"{rel}.html"


def test_runs_beyond_keep_are_deleted_with_their_pages(tmp_path: Path) -> None:
    site = tmp_path / "data_docs" / "raw"
    made = []
    for run in range(1, 5):
        pages = [_result(site, "orders", run), _result(site, "reviews", run)]
        made.append(pages)
        runs = record_run(site, pages, warnings=pages[1:], keep=2)
    assert [r["results"] for r in runs] == made[2:]
    for pages in made[:2]:
        for page in pages:
            assert not (site / page).exists()
            assert (
                not (history_dir(site) / page.removeprefix("validations/"))
                .with_suffix(".json")
                .exists()
            )
    for pages in made[2:]:
        assert all((site / p).exists() for p in pages)
    # empty folders of deleted runs are gone, the suites' folders stay
    assert sorted(p.name for p in (site / "validations" / "orders" / "__none__").iterdir()) == [
        "20261203T000000.000000Z", "20261204T000000.000000Z"]  # fmt: skip
    mark_warnings(site, runs)
    assert "Warning (did not block the gate)" in (site / made[3][1]).read_text()
    assert "Failed" in (site / made[3][0]).read_text()  # not a warning: left as GX drew it
