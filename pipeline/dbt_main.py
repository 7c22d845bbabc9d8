"""dbt commands one after another in one process: `python -m pipeline.dbt_main '[[...], ...]'`.

A run's `dbt build` is followed by `dbt source freshness`. As two `dbt` processes the
second paid dbt's start-up and parse again (6.3 s of a run at the test scale); in the
build's process it costs 1.2 s (dbt's programmatic `dbtRunner`, the parse partial). A
later command runs only when the one before it succeeded; the exit code is the first
command's, as `dbt` itself would give (0 ok, 1 failed, 2 dbt could not run).
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    from dbt.cli.main import dbtRunner

    commands: list[list[str]] = json.loads(argv[0])
    first: int | None = None
    for args in commands:
        result = dbtRunner().invoke(args)
        code = 0 if result.success else 2 if result.exception is not None else 1
        first = code if first is None else first
        if code:
            break
    return first or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
