"""Unstructured files (support tickets as text, supplier invoices as PDF, ...).

Each new file's original bytes are kept in the lake (content-addressed, see
`lake.layout.original_file_key`) and the table gets one row per file: path, size,
SHA-256, media type, extracted text, page count and the extraction error if any. A file
that cannot be read or parsed is recorded with the reason, never dropped. All new files
of a run are one batch; a file already landed (same path and content) is skipped.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import posixpath
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa

from ingest.sources.base import Extract, Opened
from ingest.sources.files import FileSource, fingerprints, glob_root, unchanged
from lake import TableState, layout

SCHEMA = pa.schema([
    ("path", pa.string()), ("file_name", pa.string()), ("size_bytes", pa.int64()),
    ("sha256", pa.string()), ("media_type", pa.string()), ("page_count", pa.int32()),
    ("text", pa.string()), ("extraction_error", pa.string()), ("original_key", pa.string()),
])  # fmt: skip
ROWS_PER_BATCH = 64
CHUNK = 4 << 20


def media_type(name: str, head: bytes) -> str:
    if head.startswith(b"%PDF"):
        return "application/pdf"
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def extract_text(data: bytes, kind: str) -> tuple[str | None, int | None, str | None]:
    """(text, pages, error): never raises for a bad document."""
    if kind == "application/pdf":
        try:
            from pypdf import PdfReader

            reader = PdfReader(io.BytesIO(data))
            pages = [page.extract_text() or "" for page in reader.pages]
            return "\n".join(pages).strip(), len(pages), None
        except Exception as exc:
            return None, None, f"PDF could not be parsed: {type(exc).__name__}: {exc}"[:500]
    if kind.startswith("text/") or kind in ("application/json", "application/xml"):
        try:
            return data.decode("utf-8-sig"), None, None
        except UnicodeDecodeError as exc:
            return (data.decode("latin-1"), None,
                    f"not UTF-8 (byte {exc.start}); decoded as Latin-1")  # fmt: skip
    return None, None, f"no text extraction for {kind}"


class DocumentSource(FileSource):
    kind = "documents"

    def open_file(self, con: duckdb.DuckDBPyConnection, filename: str) -> Opened:
        return Opened(self._rows(con, [[filename]]))

    def extracts(self, con: duckdb.DuckDBPyConnection, state: TableState) -> Iterator[Extract]:
        # a file is known by its path below the glob's folder (a project moved, or mounted
        # at another path, lands nothing again); batches landed before keys were relative
        # know it by its full path
        last: dict[str, tuple[Any, Any, str]] = {}  # key -> the content last landed
        state_hashed: dict[str, int] = {}
        for batch in state.batches:
            for path, size, mtime, fingerprint, *more in batch.input.get("files", []):
                key = more[1] if len(more) > 1 else path
                last[key] = (size, mtime, fingerprint)
                state_hashed[key] = more[0] if more else 0
        root = glob_root(self.pattern())
        new: list[list[Any]] = []
        for filename, size, mtime in self.list_files(con):
            key = filename.removeprefix(root)
            known = key if key in last else filename
            before = last.get(known)
            hashed_at = int(time.time() * 1000)
            landed = {"size": before[0], "mtime": before[1],
                      "hashed_at": state_hashed.get(known)} if before else {}  # fmt: skip
            if before and unchanged(landed, size, mtime):
                continue
            digest = self.digest(filename)
            fingerprint, legacy = fingerprints(key, filename, digest)
            if not before or before[2] not in (fingerprint, legacy):
                new.append([filename, size, mtime, fingerprint, hashed_at, key])
        if not new:
            return
        batch_fp = hashlib.sha256("".join(f[3] for f in new).encode()).hexdigest()
        description = f"{self.pattern()} ({len(new)} files)"
        yield Extract(batch_fp, description, lambda c: Opened(self._rows(c, new)),
                      {"files": new})  # fmt: skip

    def _rows(self, con: duckdb.DuckDBPyConnection, files: list[list[Any]]) -> pa.RecordBatchReader:
        def batches() -> Iterator[pa.RecordBatch]:
            rows: list[dict[str, Any]] = []
            for filename, *_ in files:
                rows.append(self._row(con, filename))
                if len(rows) == ROWS_PER_BATCH:
                    yield pa.RecordBatch.from_pylist(rows, schema=SCHEMA)
                    rows = []
            if rows:
                yield pa.RecordBatch.from_pylist(rows, schema=SCHEMA)

        return pa.RecordBatchReader.from_batches(SCHEMA, batches())

    def _row(self, con: duckdb.DuckDBPyConnection, filename: str) -> dict[str, Any]:
        """One file, streamed: hashed and spooled in 4 MB chunks, its text extracted only
        up to `max_text_mb` (memory is bounded by that, whatever the file's size)."""
        name = posixpath.basename(filename)
        cap = self.table.max_text_mb << 20
        with tempfile.NamedTemporaryFile(prefix="lakehouse-doc-") as spool:
            try:
                sha, size, head = hashlib.sha256(), 0, b""
                with self.open_binary(filename) as stream:
                    while chunk := stream.read(CHUNK):
                        head = head or chunk[:8]
                        sha.update(chunk)
                        spool.write(chunk)
                        size += len(chunk)
                spool.flush()
            except OSError as exc:
                return {"path": filename, "file_name": name,
                        "extraction_error": f"could not read: {exc}"[:500]}  # fmt: skip
            digest, kind = sha.hexdigest(), media_type(name, head)
            text: str | None = None
            pages: int | None = None
            error: str | None = (
                f"too large: {size / 2**20:.0f} MB; text is extracted from files up to "
                f"{self.table.max_text_mb} MB (max_text_mb)")  # fmt: skip
            if size <= cap:
                spool.seek(0)
                text, pages, error = extract_text(spool.read(), kind)
            key = layout.original_file_key(self.source.name, self.table.name, digest, name)
            if not self.lake.storage.exists(key):  # content-addressed: safe to repeat
                self.lake.storage.write_file(key, spool.name)
        return {"path": filename, "file_name": name, "size_bytes": size, "sha256": digest,
                "media_type": kind, "page_count": pages, "text": text,
                "extraction_error": error, "original_key": key}  # fmt: skip
