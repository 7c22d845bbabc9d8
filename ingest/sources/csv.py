"""CSV files from a local folder or an S3 prefix, read by DuckDB's CSV reader.

Each file is one batch. A file is identified by its path and content (SHA-256 locally,
the ETag on S3): a file already landed is skipped, a changed file lands again as a new
batch. Files whose size and mtime match their last landing are not even re-read. Rows
that do not parse (ragged lines, bad quoting, values that do not fit the column type)
are quarantined with file, line and reason; the rest of the file lands.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import duckdb

from ingest.errors import IngestError
from ingest.sources.base import Extract, Opened, Source
from lake import S3Storage, TableState
from lake.duck import quote_str


class CsvSource(Source):
    kind = "csv"

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
                "SELECT filename, size, epoch_ms(last_modified) FROM read_blob(?) "
                "ORDER BY filename",
                [pattern],
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
            bucket, _, key = filename[5:].partition("/")
            client = S3Storage(self.lake.settings).client
            return "etag:" + client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
        with open(filename, "rb") as fh:
            return "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()

    def extracts(self, con: duckdb.DuckDBPyConnection, state: TableState) -> Iterator[Extract]:
        landed = state.fingerprints
        seen = {(b.description, b.input.get("size"), b.input.get("mtime")) for b in state.batches}
        for filename, size, mtime in self.list_files(con):
            if (filename, size, mtime) in seen:
                continue  # unchanged since it landed: not even re-read
            digest = self.digest(filename)
            fingerprint = hashlib.sha256(f"{filename}\0{digest}".encode()).hexdigest()
            if fingerprint in landed:
                continue  # touched, same content
            meta: dict[str, Any] = {"size": size, "mtime": mtime, "digest": digest}
            yield Extract(fingerprint, filename, self._opener(filename), meta)

    def _read_options(self) -> str:
        o = self.table.csv
        opts = [f"header={'true' if o.header else 'false'}", "filename=false"]
        if o.delimiter is not None:
            opts.append(f"delim={quote_str(o.delimiter)}")
        if o.quote is not None:
            opts.append(f"quote={quote_str(o.quote)}")
        if o.escape is not None:
            opts.append(f"escape={quote_str(o.escape)}")
        if o.encoding != "utf-8":
            opts.append(f"encoding={quote_str(o.encoding)}")
        if o.columns:
            cols = ", ".join(f"{quote_str(k)}: {quote_str(v)}" for k, v in o.columns.items())
            opts.append(f"columns={{{cols}}}")
        if o.all_varchar:
            opts.append("all_varchar=true")
        return ", ".join(opts)

    def _opener(self, filename: str) -> Callable[[duckdb.DuckDBPyConnection], Opened]:
        def open_(con: duckdb.DuckDBPyConnection) -> Opened:
            tag = uuid.uuid4().hex[:12]
            rejects_table, rejects_scan = f"rejects_{tag}", f"rejects_scan_{tag}"
            rel = con.sql(
                f"SELECT * FROM read_csv({quote_str(filename)}, {self._read_options()}, "
                f"store_rejects=true, rejects_table={quote_str(rejects_table)}, "
                f"rejects_scan={quote_str(rejects_scan)})"
            )

            def rejects() -> duckdb.DuckDBPyRelation | None:
                try:
                    return con.sql(
                        f"SELECT {quote_str(filename)} AS source_file, line::BIGINT AS line, "
                        "column_name, error_type::VARCHAR AS error_type, "
                        "csv_line AS raw_record, error_message AS reason "
                        f"FROM {rejects_table} ORDER BY line"
                    )
                except duckdb.CatalogException:
                    return None

            return Opened(rel, rejects)

        return open_
