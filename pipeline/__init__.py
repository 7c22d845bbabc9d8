"""pipeline: the CLI, the run of the stages (ingest -> gates -> dbt -> publish) and serving.

Public entry points: `load_project`, `run_pipeline`, `publish`, `query`. They are imported
on first use, so that `lakehouse --help` does not pay for dbt, GX and DuckDB.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.config import Project, load_project
    from pipeline.errors import ConfigError, StageFailed
    from pipeline.run import RunRecord, run_pipeline
    from pipeline.serve import publish, query

_WHERE = {
    "Project": "pipeline.config",
    "load_project": "pipeline.config",
    "ConfigError": "pipeline.errors",
    "StageFailed": "pipeline.errors",
    "RunRecord": "pipeline.run",
    "run_pipeline": "pipeline.run",
    "publish": "pipeline.serve",
    "query": "pipeline.serve",
}
__all__ = [
    "ConfigError",
    "Project",
    "RunRecord",
    "StageFailed",
    "load_project",
    "publish",
    "query",
    "run_pipeline",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
