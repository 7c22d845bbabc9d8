"""Every kind of source, by the name used as `kind:` in lakehouse.yml."""

from __future__ import annotations

from ingest.sources.base import Extract, Opened, Source, Stream
from ingest.sources.csv import CsvSource
from ingest.sources.database import DatabaseSource
from ingest.sources.documents import DocumentSource
from ingest.sources.http_api import HttpApiSource
from ingest.sources.json import JsonSource
from ingest.sources.parquet import ParquetSource

KINDS: dict[str, type[Source]] = {
    "csv": CsvSource,
    "json": JsonSource,
    "parquet": ParquetSource,
    "documents": DocumentSource,
    "sqlite": DatabaseSource,
    "postgres": DatabaseSource,
    "http": HttpApiSource,
}

__all__ = [
    "KINDS",
    "CsvSource",
    "DatabaseSource",
    "DocumentSource",
    "Extract",
    "JsonSource",
    "Opened",
    "ParquetSource",
    "Source",
    "Stream",
]
