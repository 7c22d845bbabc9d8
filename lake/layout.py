"""Every name in the lake is decided here, and only here: object keys and table names.

Object keys are relative to the lake URL; local disk and S3 differ only in that base.

    tables/<source>/<table>/<load_id>.parquet   one batch's data file (DuckLake DATA_PATH)
    tables/...                                  files DuckLake writes itself (merges)
    catalog.sqlite                              the DuckLake catalog (local lake, default)
    runs/<run_id>.json                          one pipeline run
    files/<source>/<table>/<sha256>/<file name> an original document (content-addressed)

Tables (in the DuckLake catalog attached as `lake`):

    lake.<source>.<table>                      a raw table: the rows of its landed batches
    lake._lakehouse.batches                    the batch log: one row per batch
    lake._lakehouse.batch_events               gate verdicts, quarantines and releases
    lake._lakehouse.rejected_rows              rows that did not parse, with file, line, reason
    lake._lakehouse.publications               each publish: run id, build snapshot, marts
    lake._quarantine.<source>__<table>__<id>   a batch set aside whole (its own schema)
    lake._build.<mart>                         the marts as dbt last built them
    lake.marts.<mart>                          the published marts: views of `_build` at
                                               the gated snapshot
"""

from __future__ import annotations

import re

from lake.config import TABLES_DIR
from lake.errors import InvalidName

RUNS = "runs"
FILES = "files"
META = "_lakehouse"
QUARANTINE = "_quarantine"
MARTS = "marts"
BUILD = "_build"
BATCHES = f"{META}.batches"
EVENTS = f"{META}.batch_events"
REJECTED = f"{META}.rejected_rows"
PUBLICATIONS = f"{META}.publications"
RESERVED = {META, QUARANTINE, MARTS, BUILD, "main"}

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_name(kind: str, name: str) -> str:
    """Source and table names become keys and SQL identifiers: lowercase snake_case only."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidName(
            f"{kind} name {name!r} is not allowed: use lowercase letters, digits and '_', "
            "starting with a letter (at most 63 characters)"
        )
    if kind == "source" and name in RESERVED:
        raise InvalidName(f"source name {name!r} is reserved by the lake; choose another")
    return name


def check_id(kind: str, value: str) -> str:
    if not _ID.match(value) or ".." in value:
        raise InvalidName(f"{kind} {value!r} is not allowed in a lake key")
    return value


def raw_table(source: str, table: str) -> str:
    """The raw table, qualified for SQL on a connection with the lake attached."""
    return f"lake.{check_name('source', source)}.{check_name('table', table)}"


def batch_file_key(source: str, table: str, load_id: str) -> str:
    """Where a batch's Parquet file is written before it is added to its table."""
    return (
        f"{TABLES_DIR}/{check_name('source', source)}/{check_name('table', table)}/"
        f"{check_id('load id', load_id)}.parquet"
    )


def quarantine_table(source: str, table: str, load_id: str) -> str:
    """A batch set aside whole keeps its own columns in its own table."""
    tag = re.sub(r"[^a-z0-9]", "", check_id("load id", load_id).lower())
    return f"{check_name('source', source)}__{check_name('table', table)}__{tag}"


FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.,()+-]{0,200}$")


def original_file_key(source: str, table: str, sha256: str, file_name: str) -> str:
    """Where an unstructured file's original bytes are kept. Outside names are checked:
    anything but plain file names is replaced by a safe one."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise InvalidName(f"content hash {sha256!r} is not a SHA-256 hex digest")
    name = file_name if FILE_NAME.match(file_name) and ".." not in file_name else "original"
    return f"{FILES}/{check_name('source', source)}/{check_name('table', table)}/{sha256}/{name}"


def run_key(run_id: str) -> str:
    return f"{RUNS}/{check_id('run id', run_id)}.json"
