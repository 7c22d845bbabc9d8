"""ingest: sources declared in lakehouse.yml -> raw Parquet batches in the lake.

Public entry point: `run_ingest`. The config classes are cheap to import; the extract and
landing code (pyarrow, source drivers) is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ingest.config import IngestSettings, SourceConfig, TableConfig
from ingest.errors import IngestError

if TYPE_CHECKING:
    from ingest.run import IngestReport, TableReport, run_ingest

_LAZY = ("IngestReport", "TableReport", "run_ingest")
__all__ = [
    "IngestError",
    "IngestReport",
    "IngestSettings",
    "SourceConfig",
    "TableConfig",
    "TableReport",
    "run_ingest",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'ingest' has no attribute {name!r}")
    return getattr(importlib.import_module("ingest.run"), name)
