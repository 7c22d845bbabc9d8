"""CSV files (any delimiter, quoting, header or not, UTF-8 with or without BOM, Latin-1,
UTF-16; plain, .gz or .zst), read by DuckDB's CSV reader.

Rows that do not parse (ragged lines, bad quoting, undecodable bytes, lines longer than
`max_line_size_mb`) are quarantined with file, line and reason; the rest of the file
lands. `""` stays an empty string (an empty field is NULL). A file whose dialect cannot be
detected strictly (CRLF with a stray LF row) is read leniently. A column whose type was sniffed
from a sample (say BIGINT) but holds text further down lands as text: the file is read
again with that column as VARCHAR, nothing is truncated or rejected for it.
"""

from __future__ import annotations

import uuid

import duckdb

from ingest.sources.base import Opened
from ingest.sources.files import FileSource
from lake.duck import quote_str


class CsvSource(FileSource):
    kind = "csv"

    def _read_options(self, strict: bool = True) -> str:
        o = self.table.csv
        opts = [f"header={'true' if o.header else 'false'}", "filename=false",
                "allow_quoted_nulls=false",  # `""` is an empty string, an empty field NULL
                # DuckDB's buffer defaults to 16 lines: 256 MB a thread at 16 MB lines
                f"max_line_size={o.max_line_size_mb << 20}",
                f"buffer_size={max(o.max_line_size_mb << 20, 32 << 20)}"]  # fmt: skip
        if o.strict_mode is not None or not strict:
            opts.append(f"strict_mode={'true' if strict and o.strict_mode else 'false'}")
        if o.null_padding:
            opts.append("null_padding=true")
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

    def open_file(
        self, con: duckdb.DuckDBPyConnection, filename: str, as_text: tuple[str, ...] = ()
    ) -> Opened:
        tag = uuid.uuid4().hex[:12]
        rejects_table, rejects_scan = f"rejects_{tag}", f"rejects_scan_{tag}"
        types = ""
        if as_text:
            types = ", types={" + ", ".join(f"{quote_str(c)}: 'VARCHAR'" for c in as_text) + "}"

        def read(strict: bool) -> duckdb.DuckDBPyRelation:
            return con.sql(
                f"SELECT * FROM read_csv({quote_str(filename)}, {self._read_options(strict)}"
                f"{types}, store_rejects=true, rejects_table={quote_str(rejects_table)}, "
                f"rejects_scan={quote_str(rejects_scan)})"
            )

        try:
            rel = read(strict=True)
        except duckdb.InvalidInputException as exc:
            if self.table.csv.strict_mode is not None or "sniffing" not in str(exc):
                raise
            rel = read(strict=False)  # mixed line endings: what a lenient parse is for

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

        def widen() -> Opened | None:
            """Columns sniffed as numbers or dates from a sample whose later values are
            text: read the file again with them as text (raw is never lossy)."""
            if as_text or self.table.csv.columns:
                return None  # already widened, or types fixed by the user
            try:
                rows = con.execute(
                    f"SELECT DISTINCT column_name FROM {rejects_table} "
                    "WHERE error_type = 'CAST' AND column_name IS NOT NULL ORDER BY 1"
                ).fetchall()
            except duckdb.CatalogException:
                return None
            columns = tuple(r[0] for r in rows)
            return self.open_file(con, filename, columns) if columns else None

        return Opened(rel, rejects, widen=widen)
