"""Runs one measured call in a fresh process: `python -m bench._child mod:fn '{json}'`."""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time


def main() -> None:
    target, args = sys.argv[1], json.loads(sys.argv[2])
    module, _, func = target.partition(":")
    fn = getattr(importlib.import_module(module), func)
    setup = getattr(importlib.import_module(module), f"setup_{func}", None)
    state = setup(**args) if setup else None
    start = time.perf_counter()
    extra = fn(state, **args) if setup else fn(**args)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "extra": extra}))


def peak_rss_mb() -> float:
    """This process's own peak RSS. (ru_maxrss would do, but Linux carries it across
    exec, so a child would report its parent's peak.)"""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
