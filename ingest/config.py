"""The `sources:` section of `lakehouse.yml`: what to extract, declared, not coded."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name("table", value)

    @field_validator("primary_key", mode="before")
    @classmethod
    def _pk(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class SourceConfig(_Strict):
    """A source system: one kind of extractor and the tables it provides."""

    name: str = Field(description="Source name in the lake and in dbt: lowercase snake_case.")
    kind: Literal["csv"] = Field(description="Which extractor reads it (see ingest/sources/).")
    tables: list[TableConfig] = Field(min_length=1, description="The tables to land.")

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
