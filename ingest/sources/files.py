"""What every file source shares: listing a glob (local or S3), one batch per file, and
skipping files already landed.

A file is identified by its path below the glob's root folder and its content (xxh3-128
locally, the ETag on S3): a file already landed is skipped, a changed file lands again as
a new batch, and a project moved or mounted elsewhere (a container) re-lands nothing.
Files whose size and mtime match their last landing are not even re-read.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import xxhash

from ingest.errors import IngestError
from ingest.sources.base import Extract, Opened, Source
from lake import S3Storage, TableState
from lake.duck import quote_str

MTIME_RESOLUTION_MS = 2000  # file systems and object stores keep mtimes to the second


def unchanged(landed: dict[str, Any], size: int, mtime: int) -> bool:
    """Same size and mtime as when it landed, and that mtime was already in the past when
    the file was hashed (a rewrite within the same second keeps the mtime: re-hash)."""
    hashed_at = landed.get("hashed_at") or 0
    return (landed.get("size"), landed.get("mtime")) == (size, mtime) and (
        mtime < hashed_at - MTIME_RESOLUTION_MS
    )


def glob_root(pattern: str) -> str:
    """The folder a glob starts from: up to the last '/' before its first wildcard."""
    wild = min((i for i, ch in enumerate(pattern) if ch in "*?[{"), default=len(pattern))
    return pattern[: pattern.rfind("/", 0, wild) + 1]


def fingerprints(key: str, filename: str, digest: str) -> tuple[str, str]:
    """A file's fingerprint: its path below the glob's folder (`key`) and its content; and
    the one lakes written before keys were relative gave it (by its full path)."""
    return (hashlib.sha256(f"{key}\0{digest}".encode()).hexdigest(),
            hashlib.sha256(f"{filename}\0{digest}".encode()).hexdigest())  # fmt: skip


class FileSource(Source):
    """A source whose table is a glob of files; subclasses say how to read one file."""

    def pattern(self) -> str:
        path = self.table.path
        if not path:
            raise IngestError(self.source.name, self.table.name, "no `path` configured")
        if "://" in path or path.startswith("/"):
            return path
        return str(self.base_dir / path)

    def list_files(self, con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, int]]:
        pattern = self.pattern()
        try:
            files = con.execute(
                "SELECT filename, size, epoch_ms(last_modified) FROM "
                f"read_blob({quote_str(pattern)}) ORDER BY filename"
            ).fetchall()
        except duckdb.IOException as exc:
            if "No files found" not in str(exc):
                raise IngestError(self.source.name, self.table.name, str(exc), pattern) from exc
            files = []
        if not files:
            raise IngestError(self.source.name, self.table.name, "no files match the path", pattern)
        return [(str(f), int(s), int(m)) for f, s, m in files]

    def digest(self, filename: str) -> str:
        if filename.startswith("s3://"):
            storage = self.lake.storage
            if not isinstance(storage, S3Storage):
                raise IngestError(
                    self.source.name, self.table.name,
                    "files on S3 need the lake on S3 (its S3 settings)", filename,
                )  # fmt: skip
            bucket, _, key = filename[5:].partition("/")
            head = storage.client.head_object(Bucket=bucket, Key=key)  # one client, cached
            return "etag:" + head["ETag"].strip('"')
        # a content identity, not a security boundary: xxh3-128 reads at memory speed
        # (~8x SHA-256 here), which keeps hashing a small part of landing a file
        digest = xxhash.xxh3_128()
        with open(filename, "rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
        return "xxh3:" + digest.hexdigest()

    def extracts(self, con: duckdb.DuckDBPyConnection, state: TableState) -> Iterator[Extract]:
        last = state.last_by_input  # what counts is the content last landed for a file
        root = glob_root(self.pattern())
        for filename, size, mtime in self.list_files(con):
            key = filename.removeprefix(root)
            # (lakes written before keys were relative know a file by its full path)
            before = last.get(key) or last.get(filename)
            if before and unchanged(before.input, size, mtime):
                continue  # unchanged since it landed: not even re-read
            hashed_at = int(time.time() * 1000)
            digest = self.digest(filename)
            fingerprint, legacy = fingerprints(key, filename, digest)
            if before and before.fingerprint in (fingerprint, legacy):
                continue  # touched (or moved with its project), same content
            meta: dict[str, Any] = {
                "size": size, "mtime": mtime, "digest": digest, "hashed_at": hashed_at
            }  # fmt: skip
            yield Extract(fingerprint, filename, self._opener(filename), meta, input_key=key)

    def open_binary(self, filename: str) -> Any:
        """The file's bytes, local or on S3, .gz and .zst decompressed (pyarrow)."""
        from pyarrow import fs

        compression = {".gz": "gzip", ".zst": "zstd"}.get(os.path.splitext(filename)[1])
        if filename.startswith("s3://"):
            s3 = self.lake.settings.s3
            filesystem, path = (s3.pyarrow_fs() if s3 else fs.S3FileSystem()), filename[5:]
        else:
            filesystem, path = fs.LocalFileSystem(), filename
        stream = filesystem.open_input_stream(path, compression=compression)
        return io.BufferedReader(_Raw(stream), buffer_size=1 << 20)

    def _opener(self, filename: str) -> Callable[[duckdb.DuckDBPyConnection], Opened]:
        return lambda con: self.open_file(con, filename)

    @abstractmethod
    def open_file(self, con: duckdb.DuckDBPyConnection, filename: str) -> Opened:
        """The file's records as a stream, and its bad records once it is consumed."""


class _Raw(io.RawIOBase):
    """A pyarrow input stream as a Python raw stream (for line iteration)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.stream.close()
        super().close()
