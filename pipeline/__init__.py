"""pipeline: the CLI, the run of the stages (ingest -> gates -> dbt -> publish) and serving.

Public entry points: `load_project`, `run_pipeline`, `publish`, `query`.
"""

from pipeline.config import Project, load_project
from pipeline.errors import ConfigError, StageFailed
from pipeline.run import RunRecord, run_pipeline
from pipeline.serve import publish, query

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
