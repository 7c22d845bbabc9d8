"""CSV files (any delimiter, quoting, header or not, UTF-8 with or without BOM, Latin-1,
UTF-16; plain, .gz or .zst), read by DuckDB's CSV reader.

Rows that do not parse (ragged lines, bad quoting, values that do not fit the column
type) are quarantined with file, line and reason; the rest of the file lands.
"""

from __future__ import annotations

import uuid

import duckdb

from ingest.sources.base import Opened
from ingest.sources.files import FileSource
from lake.duck import quote_str


class CsvSource(FileSource):
    kind = "csv"

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

    def open_file(self, con: duckdb.DuckDBPyConnection, filename: str) -> Opened:
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
