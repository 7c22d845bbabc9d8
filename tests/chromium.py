"""Headless Chromium (Debian `chromium`, installed by scripts/ensure-services.sh): what a
person opening a page from disk would see, as the DOM after scripts ran and a screenshot."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError("chromium not found: run scripts/ensure-services.sh")
    return found


def _run(page: Path, *args: str, budget_ms: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-dev-shm-usage", f"--virtual-time-budget={budget_ms}", *args,
         page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip


def dom_after_scripts(page: Path, budget_ms: int = 15_000) -> str:
    return _run(page, "--dump-dom", budget_ms=budget_ms).stdout


def screenshot(page: Path, out: Path, size: str = "1200,2400", budget_ms: int = 15_000) -> Path:
    _run(page, f"--screenshot={out}", f"--window-size={size}", budget_ms=budget_ms)
    return out
