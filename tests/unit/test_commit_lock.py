"""The SQLite catalog's commit lock (lake.locks): one holder process at a time,
re-entrant in a process, released by the last release or by the holder's death."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lake.locks import LockTimeout, hold_commits, holding_commits, release_commits


def _try_from_another_process(catalog: Path) -> str:
    code = textwrap.dedent(f"""
        from lake.locks import LockTimeout, hold_commits
        try:
            hold_commits({str(catalog)!r}, wait_s=0.2)
            print("took it")
        except LockTimeout as exc:
            print("refused:", exc)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return done.stdout.strip()


def test_one_process_holds_the_commit_lock_at_a_time(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.sqlite"
    hold_commits(catalog)
    hold_commits(catalog)  # (a transaction inside another: the same process's hold)
    try:
        assert holding_commits(catalog)
        assert _try_from_another_process(catalog).startswith("refused:")
        release_commits(catalog)
        assert holding_commits(catalog)  # (one release per hold)
        assert _try_from_another_process(catalog).startswith("refused:")
    finally:
        release_commits(catalog)
    assert not holding_commits(catalog)
    assert _try_from_another_process(catalog) == "took it"  # (and it died holding it)
    assert _try_from_another_process(catalog) == "took it"
    release_commits(catalog)  # (without a hold: nothing)


def test_a_commit_lock_held_too_long_names_the_catalog(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.sqlite"
    code = textwrap.dedent(f"""
        import sys, time
        from lake.locks import hold_commits
        hold_commits({str(catalog)!r})
        print("held", flush=True)
        sys.stdin.read()
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockTimeout, match=r"catalog\.sqlite.*commit lock"):
            hold_commits(catalog, wait_s=0.1)
        assert not holding_commits(catalog)
    finally:
        holder.communicate("")
