"""Every object key in the lake is decided here, and only here.

Keys are relative to the lake URL; local disk and S3 differ only in that base.

    raw/<source>/<table>/load_date=<YYYY-MM-DD>/<load_id>.parquet         one committed batch
    quarantine/<source>/<table>/load_date=<YYYY-MM-DD>/<load_id>.parquet  its rejected rows
    state/<source>/<table>.json                                           ingest state
    runs/<run_id>.json                                                    one pipeline run
    files/<source>/<table>/<sha256>/<file name>       an original document (content-addressed)
    _staging/<key>.<token>                  an S3 batch being written (not under raw/)

A batch is one Parquet object, so it becomes visible in one atomic step. Readers glob
`raw/<source>/<table>/*/*.parquet`; in-progress local files are hidden `.tmp` files that
never match.
"""

from __future__ import annotations

import re
from datetime import date

from lake.errors import InvalidName

RAW = "raw"
QUARANTINE = "quarantine"
STATE = "state"
RUNS = "runs"
STAGING = "_staging"

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_name(kind: str, name: str) -> str:
    """Source and table names become keys and SQL identifiers: lowercase snake_case only."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidName(
            f"{kind} name {name!r} is not allowed: use lowercase letters, digits and '_', "
            "starting with a letter (at most 63 characters)"
        )
    return name


def check_id(kind: str, value: str) -> str:
    if not _ID.match(value) or ".." in value:
        raise InvalidName(f"{kind} {value!r} is not allowed in a lake key")
    return value


def table_prefix(zone: str, source: str, table: str) -> str:
    return f"{zone}/{check_name('source', source)}/{check_name('table', table)}"


def batch_key(source: str, table: str, load_date: date, load_id: str) -> str:
    return (
        f"{table_prefix(RAW, source, table)}/load_date={load_date.isoformat()}/"
        f"{check_id('load id', load_id)}.parquet"
    )


def quarantine_key(source: str, table: str, load_date: date, load_id: str) -> str:
    return (
        f"{table_prefix(QUARANTINE, source, table)}/load_date={load_date.isoformat()}/"
        f"{check_id('load id', load_id)}.parquet"
    )


def quarantined_batch_key(source: str, table: str, load_date: date, load_id: str) -> str:
    """A whole batch set aside (e.g. its schema changed under a `quarantine` policy)."""
    return (
        f"{table_prefix(QUARANTINE, source, table)}/batches/load_date={load_date.isoformat()}/"
        f"{check_id('load id', load_id)}.parquet"
    )


FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.,()+-]{0,200}$")


def original_file_key(source: str, table: str, sha256: str, file_name: str) -> str:
    """Where an unstructured file's original bytes are kept. Outside names are checked:
    anything but plain file names is replaced by a safe one."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise InvalidName(f"content hash {sha256!r} is not a SHA-256 hex digest")
    name = file_name if FILE_NAME.match(file_name) and ".." not in file_name else "original"
    return f"files/{check_name('source', source)}/{check_name('table', table)}/{sha256}/{name}"


def raw_glob(source: str, table: str) -> str:
    """What readers (dbt sources, `lakehouse query`) read for a table."""
    return f"{table_prefix(RAW, source, table)}/*/*.parquet"


def staging_key(key: str, token: str) -> str:
    """Where an object store writer puts a batch before publishing it under `key`."""
    return f"{STAGING}/{key}.{check_id('token', token)}"


def quarantine_glob(source: str, table: str) -> str:
    return f"{table_prefix(QUARANTINE, source, table)}/*/*.parquet"


def state_key(source: str, table: str) -> str:
    return f"{STATE}/{check_name('source', source)}/{check_name('table', table)}.json"


def run_key(run_id: str) -> str:
    return f"{RUNS}/{check_id('run id', run_id)}.json"
