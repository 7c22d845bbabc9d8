"""JSON files: JSON Lines, or a document holding an array of records (or one object).

Nested objects stay nested (structs, lists); a field that is sometimes a number and
sometimes text lands as JSON text, never as a truncated number. In JSON Lines, a line
that is not valid JSON is quarantined with its line number and the rest of the file
lands; a JSON document that does not parse fails the file.
"""

from __future__ import annotations

import os
import tempfile
import uuid

import duckdb

from ingest.sources.base import Opened
from ingest.sources.files import FileSource
from lake.duck import quote_str

RECORD_SEPARATOR = "chr(30)"  # splits a file into lines without interpreting them


class JsonSource(FileSource):
    kind = "json"

    def open_file(self, con: duckdb.DuckDBPyConnection, filename: str) -> Opened:
        fmt = self.table.json_format
        if fmt == "auto" and filename.removesuffix(".gz").removesuffix(".zst").endswith(
            (".jsonl", ".ndjson")
        ):
            fmt = "newline_delimited"
        read = f"read_json({quote_str(filename)}, format={quote_str(fmt)})"
        if fmt != "newline_delimited":
            return Opened(con.sql(f"SELECT * FROM {read}"))
        # one pass when every line parses; the line-by-line path only when one does not
        # (schema inference samples the file, so a bad line can fail here already)
        fallback = _LineChecked(con, filename, read).opened
        try:
            return Opened(con.sql(f"SELECT * FROM {read}"), fallback=fallback)
        except duckdb.InvalidInputException:
            return fallback()


class _LineChecked:
    """JSON Lines with bad lines: split valid from invalid, land the valid ones."""

    def __init__(self, con: duckdb.DuckDBPyConnection, filename: str, read: str) -> None:
        self.con, self.filename, self.read = con, filename, read
        self.tag = uuid.uuid4().hex[:12]

    def opened(self) -> Opened:
        con, tag = self.con, self.tag
        lines = (
            f"read_csv({quote_str(self.filename)}, columns={{'raw': 'VARCHAR'}}, header=false, "
            f"delim={RECORD_SEPARATOR}, quote='', escape='', auto_detect=false, "
            "strict_mode=false, null_padding=false)"
        )
        row = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()
        con.execute("SET preserve_insertion_order = true")  # for line numbers
        try:
            con.execute(
                f"CREATE TEMP TABLE lines_{tag} AS "
                f"SELECT row_number() OVER () AS line, raw FROM {lines}"
            )
        finally:  # as it was (the setting is the whole database's)
            con.execute(f"SET preserve_insertion_order = {bool(row and row[0])}")
        bad = con.execute(
            f"SELECT count(*) FROM lines_{tag} WHERE raw IS NOT NULL AND trim(raw) <> '' "
            "AND NOT json_valid(raw)"
        ).fetchone()
        if not bad or bad[0] == 0:
            con.execute(f"DROP TABLE lines_{tag}")
            return Opened(con.sql(f"SELECT * FROM {self.read}"))
        # land the valid lines, typed by the same inference as a clean file
        valid = os.path.join(tempfile.gettempdir(), f"lakehouse-valid-{tag}.jsonl")
        con.execute(
            f"COPY (SELECT raw FROM lines_{tag} WHERE json_valid(raw) ORDER BY line) "
            f"TO {quote_str(valid)} "
            f"(FORMAT csv, HEADER false, QUOTE '', DELIMITER {RECORD_SEPARATOR})"
        )
        rel = con.sql(f"SELECT * FROM read_json({quote_str(valid)}, format='newline_delimited')")

        def rejects() -> duckdb.DuckDBPyRelation:
            return con.sql(
                f"SELECT {quote_str(self.filename)} AS source_file, line, "
                "NULL::VARCHAR AS column_name, 'INVALID JSON' AS error_type, "
                "raw AS raw_record, 'line is not valid JSON' AS reason "
                f"FROM lines_{tag} WHERE raw IS NOT NULL AND trim(raw) <> '' "
                "AND NOT json_valid(raw) ORDER BY line"
            )

        return Opened(rel, rejects, cleanup=lambda: os.unlink(valid))
