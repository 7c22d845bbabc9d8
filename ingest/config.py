"""The `sources:` section of `lakehouse.yml`: what to extract, declared, not coded."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ingest.cdc.options import CdcOptions
from ingest.stream.options import MqttOptions
from lake.layout import check_name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CsvOptions(_Strict):
    """How to parse a CSV file; anything left unset is sniffed by DuckDB."""

    delimiter: str | None = Field(None, description="Field separator, e.g ',' or ';'.")
    header: bool = Field(True, description="Whether the first line holds the column names.")
    quote: str | None = Field(None, description="Quote character, default '\"'.")
    escape: str | None = Field(None, description="Escape character inside quotes.")
    encoding: Literal["utf-8", "latin-1", "utf-16"] = Field(
        "utf-8", description="File encoding (a UTF-8 BOM is skipped)."
    )
    columns: dict[str, str] | None = Field(
        None, description="Column name -> DuckDB type, to fix types instead of sniffing them."
    )
    all_varchar: bool = Field(False, description="Land every column as text (no inference).")
    max_line_size_mb: int = Field(
        16, ge=1, le=1024, description="Longest line (a row, quoted newlines included)."
    )
    strict_mode: bool | None = Field(
        None,
        description="Parse strictly (true), or tolerate mixed line endings and stray quotes "
        "(false). Unset: strict, and lenient for a file whose dialect strict parsing cannot "
        "detect (say CRLF with one LF row).",
    )
    null_padding: bool = Field(
        False, description="A row with too few columns gets NULLs instead of quarantine."
    )


class Pagination(_Strict):
    """How an API pages its results."""

    type: Literal["none", "page", "offset", "cursor", "link_header"] = Field(
        "none",
        description="page number, offset/limit, a cursor token in the body, or "
        "RFC 8288 `Link: <...>; rel=next` headers.",
    )
    param: str = Field("page", description="page: the page-number parameter.")
    start: int = Field(1, description="page: the first page number.")
    offset_param: str = Field("offset", description="offset: the offset parameter.")
    limit_param: str = Field("limit", description="offset: the page-size parameter.")
    limit: int = Field(100, ge=1, description="offset: records per page.")
    cursor_path: str = Field("next_cursor", description="cursor: dotted path of the token.")
    cursor_param: str = Field("cursor", description="cursor: the parameter that sends it back.")
    total_path: str | None = Field(
        None,
        description="page/offset: dotted path of the total in each page (pages for `page`, "
        "records for `offset`): paging stops there instead of on an empty page.",
    )
    max_pages: int = Field(
        100_000, ge=1, description="Fail beyond this many pages (each one new, or it loops)."
    )


class TableConfig(_Strict):
    """One raw table of a source."""

    name: str = Field(description="Table name in the lake: lowercase snake_case.")
    path: str | None = Field(
        None,
        description="File glob, relative to lakehouse.yml or s3://bucket/prefix/*.csv "
        "(file sources).",
    )
    primary_key: list[str] = Field(
        default_factory=list,
        description="Columns that identify a record: what `merge` replaces by, and what "
        "staging deduplicates on.",
    )
    write_disposition: Literal["append", "replace", "merge"] | None = Field(
        None,
        description="How a batch changes the raw table: append (events: keep every row), "
        "replace (a full dump replaces the current rows, so deleted rows go away) or merge "
        "(latest version per primary_key). Default: replace for a database table without "
        "a cursor, merge for one with a cursor and a primary_key, else append.",
    )
    csv: CsvOptions = Field(default_factory=CsvOptions, description="CSV parsing options.")
    json_format: Literal["auto", "newline_delimited", "array"] = Field(
        "auto",
        description="JSON sources: JSON Lines, an array of records, or auto "
        "(JSON Lines for .jsonl/.ndjson files).",
    )
    max_text_mb: int = Field(
        64, ge=1, description="Documents sources: text is extracted from files up to this "
        "size; larger ones land with `extraction_error: too large` (their bytes are kept).",
    )  # fmt: skip
    tail: bool = Field(
        False, description="JSON Lines sources: files another process keeps appending to; "
        "each ingest lands the whole lines added since the byte offset the last batch "
        "committed (a file truncated or replaced is read from the start).",
    )  # fmt: skip
    json_max_depth: int = Field(
        16, ge=1, le=64,
        description="JSON and HTTP sources: nesting kept as structs and lists down to this "
        "depth; deeper values land as JSON text.",
    )  # fmt: skip
    table: str | None = Field(
        None, description="Database sources: the table in the database (default: name)."
    )
    cursor: str | None = Field(
        None,
        description="Database sources: column for incremental extracts (e.g. updated_at or "
        "id); without it every change lands a full dump.",
    )
    cdc: bool = Field(
        False,
        description="Database sources: land every insert, update and delete as a change "
        "log (operation, position, row), from PostgreSQL's write-ahead log, or by comparing "
        "dumps (SQLite; see `database.cdc.mode`); needs a primary_key.",
    )
    lag: str | int | None = Field(
        None,
        description="Re-read this far behind the watermark, for late commits: an interval "
        "('10 minutes') for timestamps, a number for ids.",
    )
    endpoint: str | None = Field(None, description="HTTP sources: path below base_url.")
    params: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="HTTP sources: fixed query parameters."
    )
    records_path: str | None = Field(
        None, description="HTTP sources: dotted path to the list of records in each page."
    )
    paginate: Pagination = Field(default_factory=Pagination, description="HTTP pagination.")
    cursor_param: str | None = Field(
        None,
        description="HTTP sources: query parameter that sends the watermark of `cursor` "
        "(e.g. updated_since) for incremental extracts.",
    )

    columns: dict[str, str] = Field(
        default_factory=dict, description="Events and MQTT sources: the stream's schema, "
        "field -> type (VARCHAR, BIGINT, INTEGER, DOUBLE, BOOLEAN, DATE, TIMESTAMPTZ, JSON); "
        "an event with another field, or a value of another type, is rejected.",
    )  # fmt: skip
    required: list[str] = Field(
        default_factory=list, description="Events and MQTT sources: fields that must be "
        "present and not null.",
    )  # fmt: skip
    topic: str | None = Field(None, description="MQTT sources: topic filter (+ and # allowed).")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name("table", value)

    @model_validator(mode="after")
    def _merge_needs_key(self) -> TableConfig:
        if self.write_disposition == "merge" and not self.primary_key:
            raise ValueError(f"table {self.name}: write_disposition merge needs a primary_key")
        if self.cdc:
            if not self.primary_key:
                raise ValueError(f"table {self.name}: cdc needs a primary_key")
            if self.cursor or self.lag is not None:
                raise ValueError(f"table {self.name}: cdc replaces `cursor` and `lag`")
            if self.write_disposition not in (None, "append"):
                raise ValueError(f"table {self.name}: a change log is append-only")
        return self

    def reads_log(self, source: SourceConfig) -> bool:
        """A `cdc` table whose changes come from a PostgreSQL slot (else from dumps)."""
        return (self.cdc and source.kind == "postgres" and source.database is not None
                and source.database.cdc.mode == "log")  # fmt: skip

    def disposition(self, kind: str) -> str:
        """The write disposition, declared or implied by the kind of source."""
        if self.write_disposition:
            return self.write_disposition
        if kind in DATABASE_KINDS:
            if self.cdc:
                return "append"  # a change log: every change is kept
            if self.cursor is None:
                return "replace"
            return "merge" if self.primary_key else "append"
        return "append"

    @field_validator("primary_key", mode="before")
    @classmethod
    def _pk(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


Kind = Literal["csv", "json", "parquet", "documents", "sqlite", "postgres", "http", "events",
               "mqtt"]  # fmt: skip
DATABASE_KINDS = ("sqlite", "postgres")
PUSHED_KINDS = ("events", "mqtt")
"""Sources that send their data to `lakehouse collect`: `lakehouse run` does not pull them."""
COMMON_TABLE_OPTIONS = frozenset({"name", "primary_key", "write_disposition"})
TABLE_OPTIONS: dict[str, frozenset[str]] = {
    "csv": frozenset({"path", "csv"}),
    "json": frozenset({"path", "json_format", "json_max_depth", "tail"}),
    "parquet": frozenset({"path"}),
    "documents": frozenset({"path", "max_text_mb"}),
    "sqlite": frozenset({"table", "cursor", "lag", "cdc"}),
    "postgres": frozenset({"table", "cursor", "lag", "cdc"}),
    "http": frozenset({"endpoint", "params", "records_path", "paginate", "cursor",
                       "cursor_param", "json_max_depth"}),
    "events": frozenset({"columns", "required"}),
    "mqtt": frozenset({"topic", "columns", "required"}),
}  # fmt: skip
"""Which table options each kind of source reads: any other is an error naming the key."""


class DatabaseOptions(_Strict):
    """Where a database source is. Secrets come from the environment (`${PGPASSWORD}` in
    the URL, or libpq's PG* variables), never from the committed file."""

    url: str = Field(
        description="sqlite: a file path; postgres: a libpq URL or 'host=... dbname=...'."
    )
    schema_name: str | None = Field(
        None, alias="schema", description="Schema to read (postgres default: public)."
    )
    include: list[str] = Field(
        default_factory=list,
        description="Glob patterns of tables to land as full dumps, besides `tables`.",
    )
    connect_retries: int = Field(
        4, ge=0, description="Retries when the server is unreachable (refused, timed out, "
        "starting up), with exponential backoff; a wrong password or database fails at once.",
    )  # fmt: skip
    connect_backoff_s: float = Field(1.0, ge=0, description="First retry delay; doubles.")
    cdc: CdcOptions = Field(
        default_factory=CdcOptions, description="postgres: tables with `cdc: true`."
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class HttpAuth(_Strict):
    """Credentials, from environment variables (`${VENDOR_TOKEN}`); never printed."""

    type: Literal["none", "bearer", "basic", "api_key"] = "none"
    token: str | None = Field(None, description="bearer: the token.")
    username: str | None = Field(None, description="basic: user name.")
    password: str | None = Field(None, description="basic: password.")
    name: str | None = Field(None, description="api_key: header or parameter name.")
    value: str | None = Field(None, description="api_key: the key.")
    location: Literal["header", "query"] = Field(
        "header", alias="in", description="api_key: sent as a header or a query parameter."
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def secrets(self) -> list[str]:
        return [v for v in (self.token, self.password, self.value) if v]


class HttpOptions(_Strict):
    """An HTTP API: where it is and how to talk to it politely."""

    base_url: str = Field(description="e.g. https://api.vendor.example/v1")
    auth: HttpAuth = Field(default_factory=HttpAuth, description="Authentication.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")
    timeout_s: float = Field(30, gt=0, description="Timeout of every request, in seconds.")
    max_retries: int = Field(5, ge=0, description="Retries on connection errors, timeouts, 5xx.")
    backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubles, with jitter.")
    max_retry_after_s: float = Field(120, ge=0, description="Cap on a 429's Retry-After.")
    rate_limit_per_s: float | None = Field(None, gt=0, description="At most this many requests/s.")


class SourceConfig(_Strict):
    """A source system: one kind of extractor and the tables it provides."""

    name: str = Field(description="Source name in the lake and in dbt: lowercase snake_case.")
    kind: Kind = Field(description="Which extractor reads it (see ingest/sources/).")
    tables: list[TableConfig] = Field(default_factory=list, description="The tables to land.")
    database: DatabaseOptions | None = Field(
        None, description="Database sources: the connection and table selection."
    )
    http: HttpOptions | None = Field(None, description="HTTP sources: the API.")
    mqtt: MqttOptions | None = Field(None, description="MQTT sources: the broker.")
    schedule: str | None = Field(
        None,
        description="Cron expression: `lakehouse schedule` ingests this source and rebuilds "
        "its downstream models on it (besides the project's `schedule.default`).",
    )
    runbook: str | None = Field(
        None,
        description="What to do when this source fails, shown with its error: how to start "
        "it, whom to call, a link.",
    )
    schema_policy: Literal["evolve", "freeze", "quarantine"] = Field(
        "evolve",
        description="When a batch's columns differ from the table's: evolve (land it, "
        "record the new schema), freeze (reject the batch, fail the table) or quarantine "
        "(set the whole batch aside in the quarantine zone).",
    )

    @model_validator(mode="after")
    def _kind_options(self) -> SourceConfig:
        allowed = TABLE_OPTIONS[self.kind] | COMMON_TABLE_OPTIONS
        for i, table in enumerate(self.tables):
            wrong = sorted(table.model_fields_set - allowed)
            if wrong:
                raise ValueError(
                    f"tables[{i}] ({table.name}): `{wrong[0]}` does not apply to a "
                    f"{self.kind} source (its table options: {', '.join(sorted(allowed))})"
                )
        if self.kind in DATABASE_KINDS:
            if self.database is None:
                raise ValueError(f"a {self.kind} source needs `database: {{url: ...}}`")
            if not self.tables and not self.database.include:
                raise ValueError("declare `tables` or `database.include` patterns")
        elif self.kind == "http":
            if self.http is None:
                raise ValueError("an http source needs `http: {base_url: ...}`")
            missing = [t.name for t in self.tables if not t.endpoint]
            if not self.tables or missing:
                raise ValueError(f"tables need an `endpoint` for an http source: {missing}")
        elif self.kind in PUSHED_KINDS:
            self._check_streams()
        else:
            if self.database is not None or self.http is not None:
                raise ValueError(f"`database`/`http` do not apply to a {self.kind} source")
            if not self.tables:
                raise ValueError("declare at least one table")
            missing = [t.name for t in self.tables if not t.path]
            if missing:
                raise ValueError(f"tables need a `path` for a {self.kind} source: {missing}")
        return self

    def _check_streams(self) -> None:
        if (self.kind == "mqtt") != (self.mqtt is not None):
            raise ValueError("`mqtt: {host: ...}` is for (and needed by) an mqtt source")
        if self.database is not None or self.http is not None or not self.tables:
            raise ValueError(f"a {self.kind} source declares `tables` only (its streams)")
        from ingest.stream.schema import check_schema

        for table in self.tables:
            check_schema(table)
            if self.kind == "mqtt" and not table.topic:
                raise ValueError(f"table {table.name}: an mqtt table needs a `topic`")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name("source", value)

    @field_validator("tables")
    @classmethod
    def _unique_tables(cls, tables: list[TableConfig]) -> list[TableConfig]:
        names = [t.name for t in tables]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"table names must be unique, repeated: {', '.join(dupes)}")
        return tables


class IngestSettings(_Strict):
    """How ingest runs: parallelism and the memory it may use."""

    workers: int = Field(2, ge=1, le=32, description="Tables ingested in parallel.")
    memory_limit_mb: int = Field(
        1024, ge=64, description="Memory budget for all workers together, in MB."
    )
    table_timeout_s: float | None = Field(
        None, gt=0, description="Stop a table's ingest that runs longer than this (its "
        "batch in flight is not committed; the other tables go on).",
    )  # fmt: skip
