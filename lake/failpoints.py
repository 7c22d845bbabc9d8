"""Test hooks at named steps of a commit: a test kills a process there, or holds it there
while another process goes on, to prove what a crash or an interleaving leaves."""

from __future__ import annotations

import os
import time

FAILPOINT_ENV = "LAKEHOUSE_FAILPOINT"  # `step`: die there (exit code 86)
PAUSE_ENV = "LAKEHOUSE_PAUSE"  # `step:path`: wait there until path exists


def failpoint(name: str) -> None:
    """Test hooks at a named step: die there (`LAKEHOUSE_FAILPOINT=step`), or stop there
    until a file exists (`LAKEHOUSE_PAUSE=step:path`; `path.reached` says it got there),
    so a test can order two processes without guessing at timings."""
    if os.environ.get(FAILPOINT_ENV) == name:
        os._exit(86)
    step, _, path = os.environ.get(PAUSE_ENV, "").partition(":")
    if step == name and path:
        open(f"{path}.reached", "w").close()
        deadline = time.monotonic() + 600
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
