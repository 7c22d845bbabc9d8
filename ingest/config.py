"""The `sources:` section of `lakehouse.yml`: what to extract, declared, not coded."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class TableConfig(_Strict):
    """One raw table of a source."""

    name: str = Field(description="Table name in the lake: lowercase snake_case.")
    path: str | None = Field(
        None,
        description="File glob, relative to lakehouse.yml or s3://bucket/prefix/*.csv "
        "(file sources).",
    )
    primary_key: list[str] = Field(
        default_factory=list, description="Columns that identify a record (for staging dedup)."
    )
    csv: CsvOptions = Field(default_factory=CsvOptions, description="CSV parsing options.")
    json_format: Literal["auto", "newline_delimited", "array"] = Field(
        "auto",
        description="JSON sources: JSON Lines, an array of records, or auto "
        "(JSON Lines for .jsonl/.ndjson files).",
    )
    table: str | None = Field(
        None, description="Database sources: the table in the database (default: name)."
    )
    cursor: str | None = Field(
        None,
        description="Database sources: column for incremental extracts (e.g. updated_at or "
        "id); without it every change lands a full dump.",
    )
    lag: str | int | None = Field(
        None,
        description="Re-read this far behind the watermark, for late commits: an interval "
        "('10 minutes') for timestamps, a number for ids.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name("table", value)

    @field_validator("primary_key", mode="before")
    @classmethod
    def _pk(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


Kind = Literal["csv", "json", "parquet", "sqlite", "postgres"]
DATABASE_KINDS = ("sqlite", "postgres")


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

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SourceConfig(_Strict):
    """A source system: one kind of extractor and the tables it provides."""

    name: str = Field(description="Source name in the lake and in dbt: lowercase snake_case.")
    kind: Kind = Field(description="Which extractor reads it (see ingest/sources/).")
    tables: list[TableConfig] = Field(default_factory=list, description="The tables to land.")
    database: DatabaseOptions | None = Field(
        None, description="Database sources: the connection and table selection."
    )

    @model_validator(mode="after")
    def _kind_options(self) -> SourceConfig:
        if self.kind in DATABASE_KINDS:
            if self.database is None:
                raise ValueError(f"a {self.kind} source needs `database: {{url: ...}}`")
            if not self.tables and not self.database.include:
                raise ValueError("declare `tables` or `database.include` patterns")
        else:
            if self.database is not None:
                raise ValueError(f"`database` does not apply to a {self.kind} source")
            if not self.tables:
                raise ValueError("declare at least one table")
            missing = [t.name for t in self.tables if not t.path]
            if missing:
                raise ValueError(f"tables need a `path` for a {self.kind} source: {missing}")
        return self

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
