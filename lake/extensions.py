"""DuckDB extensions from PyPI, laid out where DuckDB looks for them.

DuckDB cannot download extensions here (and should not at run time in production), so
the `duckdb-extension-<name>` wheels are the source. Each file is copied once into
`<dir>/v<version>/<platform>/<name>.duckdb_extension`; DuckDB then autoloads them with
`autoinstall_known_extensions=false`. `make install` runs `python -m lake.extensions`.

DuckDB checks an extension's signature by hashing the whole file on every LOAD, in every
database instance: about 0.1 s for each of DuckLake and SQLite, which every process of a
run paid again. So each file is checked once, by DuckDB itself (a strict instance loads
it), and `verified.json` records its size and modification time. While every file still
matches, `connection_config()` turns the per-load check off; a file changed since is
checked again, and one that fails is removed. Connections that run a reader's SQL
(`lake.duck.lock_reader`) load nothing at all (`enable_external_access` is off).
"""

from __future__ import annotations

import importlib.util
import json
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


@cache
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


def _layout(target: Path) -> Path:
    """Where DuckDB looks for this version's extensions under `target`."""
    return target / f"v{duckdb.__version__}" / _platform()


def _file(dest_dir: Path, name: str) -> Path:
    return dest_dir / f"{name}.duckdb_extension"


@cache
def _install(target: Path) -> Path:
    version = duckdb.__version__
    dest_dir = _layout(target)
    dest_dir.mkdir(parents=True, exist_ok=True)
    for package, name in EXTENSIONS.items():
        dest = _file(dest_dir, name)
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
    _verify(target, dest_dir)
    return target


VERIFIED = "verified.json"


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _recorded(dest_dir: Path) -> dict[str, list[int]]:
    try:
        return dict(json.loads((dest_dir / VERIFIED).read_text()))
    except (OSError, ValueError):
        return {}


def _verify(target: Path, dest_dir: Path) -> None:
    """DuckDB's own signature check of each file not checked yet (or changed since)."""
    recorded = _recorded(dest_dir)
    checked = dict(recorded)
    for name in EXTENSIONS.values():
        path = _file(dest_dir, name)
        if recorded.get(name) == _stamp(path):
            continue
        con = duckdb.connect(config={"extension_directory": str(target),
                                     "autoinstall_known_extensions": False})  # fmt: skip
        try:
            con.execute(f"LOAD {name}")
        except duckdb.Error as exc:
            path.unlink(missing_ok=True)  # (copied again from its wheel next time)
            raise RuntimeError(f"DuckDB extension {path} failed its signature check, "
                               f"removed: {exc}") from exc  # fmt: skip
        finally:
            con.close()
        checked[name] = _stamp(path)
    if checked != recorded:
        tmp = dest_dir / f"{VERIFIED}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(checked, indent=1))
        os.replace(tmp, dest_dir / VERIFIED)


def verified(target: Path) -> bool:
    """Every extension file in `target` is the one whose signature DuckDB checked."""
    dest_dir = _layout(target)
    recorded = _recorded(dest_dir)
    try:
        return all(
            recorded.get(name) == _stamp(_file(dest_dir, name)) for name in EXTENSIONS.values()
        )
    except OSError:
        return False


def main() -> None:
    print(f"DuckDB extensions installed in {install()}")


if __name__ == "__main__":
    main()
