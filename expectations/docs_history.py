"""GX Data Docs that keep the last runs, and show a warning as a warning.

GX's ephemeral context keeps validation results in memory, so its Data Docs show one
run. Here each gate's results go to a folder store beside the site
(`data_docs/history/<gate>/`, GX's own JSON), the site renders only this run's pages and
an index of every result kept, and `history/<gate>.runs.json` lists each gate run's results so the
oldest beyond `keep` are deleted with their pages.

GX marks a validation "Failed" when any expectation failed, whatever its severity. A
lakehouse gate passes when only `warning`/`info` expectations failed, so the pages and
index rows of those validations get a warning sign and the word "Warning" instead.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

KEEP_RUNS = 30
"""Gate runs whose results the Data Docs keep."""

_FAILED_ICON = "fa-times text-danger"
_WARNING_ICON = "fa-exclamation-triangle text-warning"


def history_dir(site: Path) -> Path:
    return site.parent / "history" / site.name


def store_config(site: Path) -> dict[str, Any]:
    """The validation results store of a gate whose Data Docs are built in `site`."""
    return {
        "class_name": "ValidationResultsStore",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": str(history_dir(site))},
    }  # fmt: skip


def page(identifier: Any) -> str:
    """The site path of a validation result's page (GX's `ValidationResultIdentifier`)."""
    return "validations/" + "/".join(str(part) for part in identifier.to_tuple()) + ".html"


def record_run(
    site: Path, results: list[str], warnings: list[str], keep: int = KEEP_RUNS
) -> list[dict[str, Any]]:
    """Add this run's result pages to `runs.json`, delete the results and pages of the runs
    beyond `keep`, and return the runs kept (oldest first)."""
    history = history_dir(site)
    history.mkdir(parents=True, exist_ok=True)
    path = history.parent / f"{site.name}.runs.json"  # beside the store: GX reads all in it
    runs: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
    runs.append({"at": datetime.now(UTC).isoformat(timespec="seconds"),
                 "results": results, "warnings": warnings})  # fmt: skip
    for old in runs[:-keep]:
        for result in old["results"]:
            rel = result.removeprefix("validations/").removesuffix(".html")
            for gone, root in ((history / f"{rel}.json", history),
                               (site / result, site / "validations")):  # fmt: skip
                gone.unlink(missing_ok=True)
                _prune_empty(gone.parent, root)
    runs = runs[-keep:]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(runs, indent=1))
    os.replace(tmp, path)
    return runs


def _prune_empty(folder: Path, root: Path) -> None:
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def mark_warnings(site: Path, runs: list[dict[str, Any]]) -> None:
    """The pages and index rows of validations that failed only on warnings say so."""
    warned = {p for run in runs for p in run["warnings"]}
    for rel in warned:
        target = site / rel
        if target.exists():
            text = target.read_text()
            marked = text.replace(_FAILED_ICON, _WARNING_ICON).replace(
                f'{_WARNING_ICON}" aria-hidden="true"></i> Failed',
                f'{_WARNING_ICON}" aria-hidden="true"></i> Warning (did not block the gate)',
            )
            if marked != text:
                target.write_text(marked)
    index = site / "index.html"
    if not index.exists() or not warned:
        return
    # the index's table is a list of row dicts in a script; a row is marked by its link
    text = index.read_text()
    rows = re.split(r"(?=\{'validation_success': )", text)
    for n, row in enumerate(rows):
        link = re.search(r"'_table_row_link_path': '([^']+)'", row)
        if link and link.group(1) in warned:
            rows[n] = row.replace(_FAILED_ICON, _WARNING_ICON).replace(
                "'_validation_success_text': 'Failed'", "'_validation_success_text': 'Warning'"
            )
    index.write_text("".join(rows))
