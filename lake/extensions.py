"""DuckDB extensions from PyPI, laid out where DuckDB looks for them.

DuckDB cannot download extensions here (and should not at run time in production), so
the `duckdb-extension-<name>` wheels are the source. Each file is copied once into
`<dir>/v<version>/<platform>/<name>.duckdb_extension`; DuckDB then autoloads them with
`autoinstall_known_extensions=false`. `make install` runs `python -m lake.extensions`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import threading
from functools import cache
from pathlib import Path

import duckdb

EXTENSION_DIR_ENV = "LAKEHOUSE_EXTENSION_DIR"
# PyPI package suffix -> the name DuckDB loads it by.
EXTENSIONS = {
    "httpfs": "httpfs",
    "postgres": "postgres_scanner",
    "sqlite": "sqlite_scanner",
    "ducklake": "ducklake",
    "tpch": "tpch",
}


def default_dir() -> Path:
    """`$LAKEHOUSE_EXTENSION_DIR`, else `.duckdb_extensions` beside the virtual environment."""
    configured = os.environ.get(EXTENSION_DIR_ENV)
    if configured:
        return Path(configured).resolve()
    return (Path(sys.prefix).parent / ".duckdb_extensions").resolve()


def _platform() -> str:
    con = duckdb.connect()  # not the shared default connection: callers run in threads
    try:
        row = con.execute("PRAGMA platform").fetchone()
    finally:
        con.close()
    assert row is not None
    return str(row[0])


_lock = threading.Lock()


def install(target: Path | None = None) -> Path:
    """Copy the extension files into the standard layout (idempotent, thread-safe);
    returns the dir."""
    with _lock:
        return _install(target or default_dir())


@cache
def _install(target: Path) -> Path:
    version = duckdb.__version__
    dest_dir = target / f"v{version}" / _platform()
    dest_dir.mkdir(parents=True, exist_ok=True)
    for package, name in EXTENSIONS.items():
        dest = dest_dir / f"{name}.duckdb_extension"
        if dest.exists():
            continue
        spec = importlib.util.find_spec(f"duckdb_extension_{package}")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(
                f"PyPI package duckdb-extension-{package}=={version} is not installed; "
                "run `make install`"
            )
        pkg_dir = Path(next(iter(spec.submodule_search_locations)))
        found = list(pkg_dir.glob(f"extensions/v{version}/*.duckdb_extension"))
        if not found:
            raise RuntimeError(f"no extension file for DuckDB {version} in {pkg_dir}")
        tmp = dest.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(found[0], tmp)
        os.replace(tmp, dest)
    return target


def main() -> None:
    print(f"DuckDB extensions installed in {install()}")


if __name__ == "__main__":
    main()
