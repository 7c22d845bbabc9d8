"""ingest: sources declared in lakehouse.yml -> raw Parquet batches in the lake.

Public entry point: `run_ingest`.
"""

from ingest.config import IngestSettings, SourceConfig, TableConfig
from ingest.errors import IngestError
from ingest.run import IngestReport, TableReport, run_ingest

__all__ = [
    "IngestError",
    "IngestReport",
    "IngestSettings",
    "SourceConfig",
    "TableConfig",
    "TableReport",
    "run_ingest",
]
