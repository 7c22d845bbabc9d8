"""JSON files: JSON Lines, or a document holding an array of records (or one object).

Nested objects stay nested (structs, lists) down to `json_max_depth` levels; deeper values
land as JSON text (a 1,000-level document would otherwise make a batch DuckDB cannot read
back). A field that is sometimes a number and sometimes text lands as JSON text, never as
a truncated number. In JSON Lines, DuckDB reads a clean file in one pass; when it refuses
one, each line is checked on its own: a line that is not valid UTF-8, not valid JSON, or
repeats a key in an object is quarantined with its line number and reason, a byte order
mark is dropped, and the other lines land. A JSON document that does not parse fails the
file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import duckdb
import xxhash

from ingest.errors import IngestError
from ingest.sources.base import Extract, Opened
from ingest.sources.files import FileSource, glob_root
from lake import TableState
from lake.duck import quote_str

BOM = b"\xef\xbb\xbf"
REJECTS_COLUMNS = (
    "columns={source_file: 'VARCHAR', line: 'BIGINT', column_name: 'VARCHAR', "
    "error_type: 'VARCHAR', raw_record: 'VARCHAR', reason: 'VARCHAR'}"
)


class JsonSource(FileSource):
    kind = "json"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._shown: dict[str, str] = {}
        """Temporary files' names as rejects show them (tail mode: the file and bytes)."""

    def extracts(self, con: duckdb.DuckDBPyConnection, state: TableState) -> Iterator[Extract]:
        if not self.table.tail:
            yield from super().extracts(con, state)
            return
        root = glob_root(self.pattern())
        for filename, size, mtime in self.list_files(con):
            if filename.startswith("s3://"):
                why = "tail mode reads local files (objects are replaced, not appended to)"
                raise IngestError(self.source.name, self.table.name, why, filename)
            key = filename.removeprefix(root)
            before = state.last_by_input.get(key)
            found = _appended(filename, size, before.input if before else {})
            if found is None:
                continue
            start, end, head, head_len = found
            fingerprint = hashlib.sha256(f"{key}\0{head}\0{start}\0{end}".encode()).hexdigest()
            meta = {"size": size, "mtime": mtime, "offset_start": start, "offset_end": end,
                    "head": head, "head_len": head_len}  # fmt: skip
            opener = self._range_opener(filename, start, end)
            yield Extract(fingerprint, f"{filename} bytes {start}-{end}", opener, meta,
                          input_key=key)  # fmt: skip

    def _range_opener(self, filename: str, start: int, end: int) -> Any:
        def open_range(con: duckdb.DuckDBPyConnection) -> Opened:
            part = tempfile.NamedTemporaryFile(  # noqa: SIM115
                "wb", prefix="lakehouse-tail-", suffix=".jsonl", delete=False
            )
            with part, open(filename, "rb") as src:
                src.seek(start)
                left = end - start
                while left > 0:
                    chunk = src.read(min(left, 1 << 22))
                    if not chunk:
                        break
                    part.write(chunk)
                    left -= len(chunk)
            self._shown[part.name] = f"{filename} bytes {start}-{end}"
            opened = self.open_file(con, part.name)
            done = opened.cleanup

            def cleanup() -> None:
                done()
                os.unlink(part.name)

            opened.cleanup = cleanup
            return opened

        return open_range

    def open_file(self, con: duckdb.DuckDBPyConnection, filename: str) -> Opened:
        fmt = self.table.json_format
        if fmt == "auto" and filename.removesuffix(".gz").removesuffix(".zst").endswith(
            (".jsonl", ".ndjson")
        ):
            fmt = "newline_delimited"
        depth = self.table.json_max_depth
        read = f"read_json({quote_str(filename)}, format={quote_str(fmt)}, maximum_depth={depth})"
        if fmt != "newline_delimited":
            return Opened(con.sql(f"SELECT * FROM {read}"))

        def fallback() -> Opened:
            return self._line_checked(con, filename)

        # one pass when every line parses; the line-by-line path only when one does not
        # (schema inference samples the file, so a bad line can fail here already)
        try:
            return Opened(con.sql(f"SELECT * FROM {read}"), fallback=fallback)
        except duckdb.InvalidInputException:
            return fallback()

    def _line_checked(self, con: duckdb.DuckDBPyConnection, filename: str) -> Opened:
        """Split the valid lines from the bad ones (streamed: memory is one line), land
        the valid ones typed by the same inference as a clean file."""
        valid = tempfile.NamedTemporaryFile(  # noqa: SIM115
            "wb", prefix="lakehouse-valid-", suffix=".jsonl", delete=False
        )
        bad = tempfile.NamedTemporaryFile(  # noqa: SIM115
            "w", prefix="lakehouse-rejects-", suffix=".jsonl", delete=False
        )
        try:
            with valid, bad, self.open_binary(filename) as lines:
                rejected = 0
                for number, line in enumerate(lines, start=1):
                    problem = _check_line(line, first=number == 1)
                    if problem is None:
                        valid.write(line.removeprefix(BOM) if number == 1 else line)
                    elif problem != "":  # ("": a blank line, nothing to land or keep)
                        rejected += 1
                        error_type, why = problem.split(": ", 1)
                        bad.write(json.dumps({
                            "source_file": self._shown.get(filename, filename), "line": number,
                            "column_name": None,
                            "error_type": error_type, "reason": why,
                            "raw_record": line.decode("utf-8", "replace").rstrip("\r\n")[:2000],
                        }) + "\n")  # fmt: skip
        except BaseException:
            for path in (valid.name, bad.name):
                os.unlink(path)
            raise

        depth = self.table.json_max_depth
        if os.path.getsize(valid.name) == 0:
            stream = con.sql("SELECT NULL::VARCHAR AS _empty WHERE false")
        else:
            stream = con.sql(f"SELECT * FROM read_json({quote_str(valid.name)}, "
                             f"format='newline_delimited', maximum_depth={depth})")  # fmt: skip

        def rejects() -> duckdb.DuckDBPyRelation | None:
            if not rejected:
                return None
            return con.sql(
                "SELECT source_file, line, column_name, error_type, raw_record, reason "
                f"FROM read_json({quote_str(bad.name)}, format='newline_delimited', "
                f"{REJECTS_COLUMNS}) ORDER BY line"
            )

        def cleanup() -> None:
            for path in (valid.name, bad.name):
                if os.path.exists(path):
                    os.unlink(path)

        return Opened(stream, rejects, cleanup=cleanup)


TAIL_HEAD = 4096
"""Tail mode knows a file by the digest of its first bytes (up to this many): another
digest there means the file was replaced or truncated, and is read from the start."""


def _appended(filename: str, size: int, landed: dict[str, Any]) -> tuple[int, int, str, int] | None:
    """(start, end, head digest, head length) of the whole lines appended since the batch
    that ended at `landed["offset_end"]`; None when there is no new whole line."""
    start = 0
    if (landed.get("offset_end") is not None and size >= landed["offset_end"]
            and _head(filename, landed["head_len"]) == landed["head"]):  # fmt: skip
        start = int(landed["offset_end"])
    with open(filename, "rb") as fh:  # the last newline: a line being written waits
        end, pos = start, size
        while pos > start:
            step = min(1 << 16, pos - start)
            fh.seek(pos - step)
            cut = fh.read(step).rfind(b"\n")
            if cut >= 0:
                end = pos - step + cut + 1
                break
            pos -= step
    if end <= start:
        return None
    head_len = min(TAIL_HEAD, end)
    return start, end, _head(filename, head_len), head_len


def _head(filename: str, length: int) -> str:
    with open(filename, "rb") as fh:
        return xxhash.xxh3_128(fh.read(length)).hexdigest()


def _check_line(line: bytes, first: bool) -> str | None:
    """None for a good line, "" for a blank one, else "ERROR TYPE: reason"."""
    if first:
        line = line.removeprefix(BOM)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"INVALID UTF-8: byte {exc.start} is not UTF-8 ({line[exc.start : exc.start + 1]!r})"
    if not text.strip():
        return ""
    try:
        json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except _DuplicateKey as exc:
        return f"DUPLICATE KEY: key {exc.args[0]!r} appears twice in one object"
    except RecursionError:
        return None  # deeper than Python parses; DuckDB keeps the depth as JSON text
    except ValueError as exc:
        return f"INVALID JSON: line is not valid JSON ({exc})"
    return None


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen
