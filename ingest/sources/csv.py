"""CSV files from a local folder or an S3 prefix, read by DuckDB's CSV reader.

Each file is one batch. A file is identified by path, size and modification time, so a
file already landed is skipped and a changed file lands again as a new batch. Rows that
do not parse (ragged lines, bad quoting, values that do not fit the column type) are
quarantined with file, line and reason; the rest of the file lands.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import duckdb

from ingest.errors import IngestError
from ingest.sources.base import Extract, Opened, Source
from lake import TableState
from lake.duck import quote_str


class CsvSource(Source):
    kind = "csv"

    def pattern(self) -> str:
        path = self.table.path
        if not path:
            raise IngestError(self.source.name, self.table.name, "no `path` configured")
        if "://" in path:
            return path
        full = (self.base_dir / path) if not path.startswith("/") else None
        return str(full) if full is not None else path

    def extracts(self, con: duckdb.DuckDBPyConnection, state: TableState) -> Iterator[Extract]:
        pattern = self.pattern()
        try:
            files = con.execute(
                "SELECT filename, size, epoch_ms(last_modified) FROM read_blob(?) "
                "ORDER BY filename",
                [pattern],
            ).fetchall()
        except duckdb.IOException as exc:
            if "No files found" in str(exc):
                files = []
            else:
                raise IngestError(self.source.name, self.table.name, str(exc), pattern) from exc
        if not files:
            raise IngestError(
                self.source.name, self.table.name, "no files match the path", pattern
            )
        landed = state.fingerprints
        for filename, size, mtime in files:
            fingerprint = hashlib.sha256(f"{filename}\0{size}\0{mtime}".encode()).hexdigest()
            if fingerprint in landed:
                continue
            yield Extract(fingerprint, filename, self._opener(filename))

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

    def _opener(self, filename: str):  # type: ignore[no-untyped-def]
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
                        "column_name, error_type::VARCHAR AS error_type, csv_line AS raw_record, "
                        f"error_message AS reason FROM {rejects_table} ORDER BY line"
                    )
                except duckdb.CatalogException:
                    return None

            return Opened(rel, rejects)

        return open_
