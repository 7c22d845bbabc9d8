"""The one small interface every kind of source implements.

A source lists *extracts* for a table: units of input (a file, a page range, a cursor
window) that each become one atomic batch in the lake. Opening an extract yields its
records as a stream of Arrow record batches, so memory is bounded by the batch size, not
the input size. Sources that DuckDB reads natively (files, databases) return a lazy
DuckDB relation: the same stream, produced and consumed inside DuckDB without crossing
into Python, which is what keeps ingest as fast as the bare engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

import duckdb
import pyarrow as pa

from ingest.config import SourceConfig, TableConfig
from lake import Lake, TableState

Stream: TypeAlias = duckdb.DuckDBPyRelation | pa.RecordBatchReader


@dataclass
class Opened:
    """An open extract: its record stream and, optionally, how to fetch its bad records."""

    stream: Stream
    rejects: Callable[[], duckdb.DuckDBPyRelation | None] = field(default=lambda: None)
    """Called after the stream is consumed: bad records (with file, line, reason) or None."""
    fallback: Callable[[], Opened] | None = None
    """A slower way to read the same input that sorts bad records out, tried when the
    stream fails on malformed input."""
    widen: Callable[[], Opened | None] | None = None
    """Called after the stream is written: a re-read of the same input with wider types
    when some values did not fit the inferred ones (so they land as text, not rejects),
    or None when all fitted."""
    cleanup: Callable[[], None] = field(default=lambda: None)
    """Called when the batch is written (temporary files and the like)."""


@dataclass
class Extract:
    fingerprint: str
    """Identity of the input: the same input is landed once."""
    description: str
    """Where the records come from (file path, URL), stored as `_source_file`."""
    open: Callable[[duckdb.DuckDBPyConnection], Opened]
    input: dict[str, Any] = field(default_factory=dict)
    """What identifies the input (size, mtime, digest...), kept with the batch."""
    watermark_column: str | None = None
    """Incremental extracts: the cursor column; the batch's max becomes the watermark."""
    watermark: str | None = None
    """Or the watermark itself, when the source knows it (as an API sent it)."""
    input_key: str | None = None
    """What this input is, whatever its content (a file's path, a table); default: the
    description. The content last landed for an input is what counts."""


class Source(ABC):
    kind: ClassVar[str]

    def __init__(
        self, source: SourceConfig, table: TableConfig, lake: Lake, base_dir: Path
    ) -> None:
        self.source, self.table, self.lake, self.base_dir = source, table, lake, base_dir

    @abstractmethod
    def extracts(self, con: duckdb.DuckDBPyConnection, state: TableState) -> Iterator[Extract]:
        """The inputs not yet landed, oldest first."""
