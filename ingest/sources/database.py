"""Databases (PostgreSQL, SQLite) through DuckDB's scanners: full dumps and incremental
extracts by a cursor column, with exact types.

- Full dump (no `cursor`): the whole table is one batch, landed again only when the
  table's content changed (row count and an order-independent sum of row hashes), not
  when anything else in the database was written; its write disposition (default
  `replace`) makes it the table's rows.
- Incremental (`cursor: updated_at` or `id`): rows with cursor > watermark - `lag`; the
  watermark advances to the batch's max only when the batch commits. The lag re-reads
  late commits; staging keeps the latest version of each key.
- Types: PostgreSQL numerics without precision are read as exact text (DuckDB would make
  them DOUBLE); json/jsonb become DuckDB JSON; arrays, timestamptz, decimals map as is.
"""

from __future__ import annotations

import fnmatch
import hashlib
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from ingest.config import SourceConfig, TableConfig
from ingest.errors import IngestError, reason
from ingest.sources.base import Extract, Opened, Source
from lake import TableState
from lake.duck import quote_ident, quote_str
from lake.layout import check_name


def _alias(source: SourceConfig) -> str:
    return f"src_{source.name}"


def database_url(source: SourceConfig, base_dir: Path) -> str:
    """The URL to attach; a relative SQLite path is relative to the project folder."""
    assert source.database is not None
    url = source.database.url
    if source.kind == "sqlite" and "://" not in url and not url.startswith("/"):
        return str(base_dir / url)
    return url


_attaching: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


def attach(con: duckdb.DuckDBPyConnection, source: SourceConfig, base_dir: Path) -> str:
    """Attach the source database read-only (once per database: the run's workers share
    it); returns its alias. Two workers attaching one source at once take turns: DuckDB's
    `ATTACH IF NOT EXISTS` fails the second with "already exists" when both get past the
    check together."""
    assert source.database is not None
    alias = _alias(source)
    with _attaching[alias]:
        attached = {
            r[0] for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()
        }
        if alias in attached:
            return alias
        kind = "postgres" if source.kind == "postgres" else "sqlite"
        sql = (f"ATTACH IF NOT EXISTS {quote_str(database_url(source, base_dir))} AS {alias} "
               f"(TYPE {kind}, READ_ONLY)")  # fmt: skip
        options = source.database
        tries = Retrying(
            retry=retry_if_exception(_unreachable),
            wait=wait_exponential(multiplier=options.connect_backoff_s, max=30),
            stop=stop_after_attempt(options.connect_retries + 1),
            reraise=True,
        )
        try:
            tries(con.execute, sql)
        except duckdb.Error as exc:
            message = reason(exc)  # IngestError redacts the password
            attempts = tries.statistics.get("attempt_number", 1)
            after = f" (unreachable: {attempts} tries)" if _unreachable(exc) else ""
            raise IngestError(source.name, "(connection)",
                              f"cannot connect{after}: {message}") from None  # fmt: skip
    return alias


_TRANSIENT = ("connection refused", "timeout expired", "timed out", "could not connect",
              "starting up", "too many clients", "no route to host", "temporarily")  # fmt: skip


def _unreachable(exc: BaseException) -> bool:
    """A server that is down or busy (worth another try), not a wrong password, database
    or file (which another try cannot fix)."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and any(t in text for t in _TRANSIENT)


def _schema(source: SourceConfig) -> str:
    assert source.database is not None
    return source.database.schema_name or ("public" if source.kind == "postgres" else "main")


def list_tables(con: duckdb.DuckDBPyConnection, source: SourceConfig, base_dir: Path) -> list[str]:
    alias = attach(con, source, base_dir)
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE "
        f"table_catalog = {quote_str(alias)} AND table_schema = {quote_str(_schema(source))} "
        "ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def expand_tables(
    con: duckdb.DuckDBPyConnection, source: SourceConfig, base_dir: Path
) -> list[TableConfig]:
    """`tables`, plus a full-dump table for each name matching `database.include`."""
    assert source.database is not None
    tables = list(source.tables)
    if source.database.include:
        declared = {t.table or t.name for t in tables}
        names = {t.name for t in tables}
        for name in list_tables(con, source, base_dir):
            if name in declared:
                continue
            if name in names and any(fnmatch.fnmatchcase(name, p) for p in source.database.include):
                raise IngestError(
                    source.name, name,
                    f"`database.include` matches table {name!r}, and a declared table is "
                    f"already named {name!r} (it reads another table): two writers for one "
                    "lake table. Rename the declared table, or narrow the include pattern",
                )  # fmt: skip
            if any(fnmatch.fnmatchcase(name, p) for p in source.database.include):
                try:
                    check_name("table", name)
                except ValueError as exc:
                    raise IngestError(
                        source.name,
                        name,
                        f"{exc}; declare it under `tables` "
                        "with a valid `name` and `table: <its name>`",
                    ) from None
                tables.append(TableConfig(name=name))
    return tables


class DatabaseSource(Source):
    kind = "database"

    @property
    def remote_table(self) -> str:
        return self.table.table or self.table.name

    def _columns(self, con: duckdb.DuckDBPyConnection, alias: str) -> list[tuple[str, str]]:
        rows = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_catalog = {quote_str(alias)} "
            f"AND table_schema = {quote_str(_schema(self.source))} "
            f"AND table_name = {quote_str(self.remote_table)} ORDER BY ordinal_position"
        ).fetchall()
        if not rows and self._is_view(con, alias):  # SQLite views list no columns there
            name = f"{quote_ident(alias)}.{quote_ident(_schema(self.source))}."
            described = con.execute(
                f"DESCRIBE SELECT * FROM {name}{quote_ident(self.remote_table)}"
            )
            rows = [(r[0], r[1]) for r in described.fetchall()]
        if not rows:
            raise IngestError(
                self.source.name, self.table.name,
                f"table {_schema(self.source)}.{self.remote_table} not found in the database",
            )  # fmt: skip
        return [(r[0], r[1]) for r in rows]

    def _is_view(self, con: duckdb.DuckDBPyConnection, alias: str) -> bool:
        return bool(con.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_type = 'VIEW' "
            f"AND table_catalog = {quote_str(alias)} "
            f"AND table_schema = {quote_str(_schema(self.source))} "
            f"AND table_name = {quote_str(self.remote_table)}"
        ).fetchall())  # fmt: skip

    def _pg_special(self, con: duckdb.DuckDBPyConnection, alias: str) -> tuple[set[str], set[str]]:
        """PostgreSQL columns DuckDB would map loosely: numerics without precision (as
        DOUBLE: read them as exact text instead) and json/jsonb (as VARCHAR: make JSON)."""
        if self.source.kind != "postgres":
            return set(), set()
        sql = (
            "SELECT column_name, data_type, numeric_precision IS NULL "
            "FROM information_schema.columns WHERE table_schema = "
            f"{quote_str(_schema(self.source))} AND table_name = {quote_str(self.remote_table)}"
        )
        rows = con.execute(f"SELECT * FROM postgres_query({quote_str(alias)}, ?)", [sql]).fetchall()
        exact_text = {
            name for name, kind, no_precision in rows if kind == "numeric" and no_precision
        }
        json_cols = {name for name, kind, _ in rows if kind in ("json", "jsonb")}
        return exact_text, json_cols

    def _from(self, con: duckdb.DuckDBPyConnection, alias: str, where: str) -> str:
        """The SELECT that reads the table with exact types."""
        columns = self._columns(con, alias)
        exact_text, json_cols = self._pg_special(con, alias)
        qualified = f"{alias}.{quote_ident(_schema(self.source))}.{quote_ident(self.remote_table)}"
        if exact_text:
            # push the read down to PostgreSQL, numerics as text, then type the rest here
            remote_cols = ", ".join(
                f"{quote_ident(c)}::text AS {quote_ident(c)}" if c in exact_text else quote_ident(c)
                for c, _ in columns
            )
            remote = (
                f"SELECT {remote_cols} FROM {quote_ident(_schema(self.source))}."
                f"{quote_ident(self.remote_table)}"
            )
            source = f"postgres_query({quote_str(alias)}, {quote_str(remote)})"
        else:
            source = qualified
        select = ", ".join(
            f"{quote_ident(c)}::JSON AS {quote_ident(c)}" if c in json_cols else quote_ident(c)
            for c, _ in columns
        )
        return f"SELECT {select} FROM {source}{where}"

    def _cursor_type(self, con: duckdb.DuckDBPyConnection, alias: str) -> str:
        assert self.table.cursor is not None
        types = dict(self._columns(con, alias))
        if self.table.cursor not in types:
            raise IngestError(
                self.source.name, self.table.name, f"cursor column {self.table.cursor!r} not found"
            )
        return types[self.table.cursor]

    def _content_hash(self, con: duckdb.DuckDBPyConnection, sql: str) -> str:
        """A digest of the table's content (row count and an order-independent sum of row
        hashes): a dump lands only when its table changed, whatever else the database did."""
        row = con.execute(
            f"SELECT count(*), sum(hash(t)::HUGEINT)::VARCHAR FROM ({sql}) AS t"
        ).fetchone()
        return f"{row[0]}:{row[1]}" if row else "0:"

    def extracts(self, con: duckdb.DuckDBPyConnection, state: TableState) -> Iterator[Extract]:
        alias = attach(con, self.source, self.base_dir)
        description = f"{self.source.kind}:{_schema(self.source)}.{self.remote_table}"
        if self.table.cursor is None:
            sql = self._from(con, alias, "")
            token = self._content_hash(con, sql)
            fingerprint = hashlib.sha256(f"{description}\0{token}".encode()).hexdigest()
            before = state.last_by_input.get(description)
            if before is not None and before.fingerprint == fingerprint:
                return  # the content last landed is the table's content now
            yield Extract(fingerprint, description, lambda c: Opened(c.sql(sql)),
                          {"mode": "full", "content": token})  # fmt: skip
            return
        cursor, ctype = self.table.cursor, self._cursor_type(con, alias)
        qualified = f"{alias}.{quote_ident(_schema(self.source))}.{quote_ident(self.remote_table)}"
        row = con.execute(f"SELECT max({quote_ident(cursor)})::VARCHAR FROM {qualified}").fetchone()
        newest = row[0] if row else None
        if newest is None:
            return  # empty table
        where = ""
        if state.watermark is not None:
            newer = con.execute(
                f"SELECT CAST({quote_str(newest)} AS {ctype}) > "
                f"CAST({quote_str(state.watermark)} AS {ctype})"
            ).fetchone()
            if not (newer and newer[0]):
                return  # nothing past the watermark
            start = f"CAST({quote_str(state.watermark)} AS {ctype})"
            if self.table.lag is not None:
                lag = self.table.lag
                start += (
                    f" - {int(lag)}" if isinstance(lag, int) else f" - INTERVAL {quote_str(lag)}"
                )
            where = f" WHERE {quote_ident(cursor)} > {start}"
        sql = self._from(con, alias, where)
        fingerprint = hashlib.sha256(
            f"{description}\0{state.watermark}\0{newest}".encode()
        ).hexdigest()
        meta: dict[str, Any] = {"mode": "incremental", "from": state.watermark, "to": newest}
        yield Extract(fingerprint, description, lambda c: Opened(c.sql(sql)), meta,
                      watermark_column=cursor)  # fmt: skip
