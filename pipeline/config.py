"""`lakehouse.yml`: the lake, the warehouse and the sources, parsed into typed objects.

Values resolve environment first (`LAKEHOUSE_LAKE_URL`, `LAKEHOUSE_WAREHOUSE_DIR`, and
`${VAR}` / `${VAR:-default}` inside any string), then the file, then the defaults here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest import IngestSettings, SourceConfig
from ingest.stream import CollectorSettings
from lake import Lake, LakeConfigError, LakeSettings
from lake.redact import SECRET_NAME, register, register_dsn
from pipeline.errors import ConfigError
from pipeline.report import ReportSection
from pipeline.serve_postgres import PostgresServing

PROJECT_FILE = "lakehouse.yml"
PROJECT_ENV = "LAKEHOUSE_PROJECT"
WAREHOUSE_ENV = "LAKEHOUSE_WAREHOUSE_DIR"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LakeSection(_Strict):
    url: str | None = Field(
        None, description="Local folder (default data/lake) or s3://bucket/prefix."
    )
    catalog: str | None = Field(
        None,
        description="The DuckLake catalog: sqlite:PATH (default: catalog.sqlite in a local "
        "lake) or postgres:DSN / postgresql://... (shared by hosts; env LAKEHOUSE_CATALOG).",
    )
    retention_days: float = Field(
        7, gt=0, description="`lakehouse maintain` expires snapshots older than this."
    )


class WarehouseSection(_Strict):
    dir: str = Field("data/warehouse", description="Folder for the build and serving DuckDB files.")
    dbt_project_dir: str = Field("dbt_project", description="The dbt project to build.")
    expectations_dir: str = Field("expectations", description="GX suites and their reports.")
    dbt_timeout_s: float | None = Field(
        None, gt=0, description="Stop a dbt build that runs longer than this (a failure)."
    )


class ScheduleSection(_Strict):
    default: str | None = Field(
        None,
        description="Cron expression for the whole pipeline (`lakehouse schedule`), e.g. "
        "'0 * * * *' hourly; a source's own `schedule` runs it and its downstream models.",
    )
    full_tests: str | None = Field(
        "0 3 * * 0",
        description="Cron expression for every dbt data test over all rows (`lakehouse check "
        "--full`): a build's own tests check only what it changed. Weekly by default; null "
        "turns it off.",
    )
    timezone: str = Field("UTC", description="Time zone the cron expressions are read in.")


class AlertsSection(_Strict):
    webhook_url: str | None = Field(
        None,
        description="Where alerts are POSTed as JSON (a Slack incoming webhook, or any "
        "receiver): a stale table, a volume anomaly, a failed or partial run. A secret: "
        "use ${VAR}.",
    )
    volume_factor: float = Field(
        5, gt=1, description="A run landing this many times more or fewer rows in a table "
        "than the median of its recent runs is an anomaly.",
    )  # fmt: skip
    volume_history: int = Field(10, ge=3, description="Recent runs the median is taken over.")


class ServingSection(_Strict):
    postgres: PostgresServing = Field(
        default_factory=PostgresServing,
        description="Also serve the published marts from PostgreSQL, for BI tools.",
    )


class ProjectFile(_Strict):
    name: str = Field("lakehouse", description="Project name, shown in run records.")
    lake: LakeSection = Field(default_factory=LakeSection)
    warehouse: WarehouseSection = Field(default_factory=WarehouseSection)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    schedule: ScheduleSection = Field(default_factory=ScheduleSection)
    alerts: AlertsSection = Field(default_factory=AlertsSection)
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    serving: ServingSection = Field(default_factory=ServingSection)
    report: ReportSection = Field(default_factory=ReportSection)
    sources: list[SourceConfig] = Field(default_factory=list)


@dataclass(frozen=True)
class Project:
    """A loaded project: its file, and every path resolved."""

    path: Path
    spec: ProjectFile
    lake: Lake

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def _dir(self, value: str, env: str | None = None) -> Path:
        value = (os.environ.get(env) if env else None) or value
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    @property
    def warehouse_dir(self) -> Path:
        return self._dir(self.spec.warehouse.dir, WAREHOUSE_ENV)

    @property
    def dbt_project_dir(self) -> Path:
        return self._dir(self.spec.warehouse.dbt_project_dir)

    @property
    def expectations_dir(self) -> Path:
        return self._dir(self.spec.warehouse.expectations_dir)

    @property
    def collector_log_dir(self) -> Path:
        return self._dir(self.spec.collector.log_dir)

    @property
    def build_db(self) -> Path:
        return self.warehouse_dir / "build.duckdb"

    @property
    def dbt_target(self) -> Path:
        """dbt's target path (`DBT_TARGET_PATH`): manifest, run results, sources.json."""
        return self.warehouse_dir / "dbt" / "target"


def find_project_file(path: str | Path | None = None) -> Path:
    candidate = path or os.environ.get(PROJECT_ENV)
    if candidate:
        p = Path(candidate).expanduser().resolve()
        if p.is_dir():
            p = p / PROJECT_FILE
        if not p.exists():
            raise ConfigError(f"{p}: project file not found")
        return p
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_FILE).exists():
            return folder / PROJECT_FILE
    raise ConfigError(
        f"no {PROJECT_FILE} in {here} or its parents: run from the project folder "
        f"or pass --project PATH"
    )


def _interpolate(value: Any, env: Mapping[str, str], where: str, file: Path) -> Any:
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                if SECRET_NAME.search(name):
                    register(env[name])
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"{file}: {where}: environment variable {name} is not set")

        return _VAR.sub(repl, value)
    if isinstance(value, dict):
        return {
            k: _interpolate(v, env, f"{where}.{k}" if where else k, file) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(v, env, f"{where}[{i}]", file) for i, v in enumerate(value)]
    return value


def _describe(error: dict[str, Any]) -> str:
    loc = ""
    for part in error["loc"]:
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    msg = error["msg"]
    if error["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling)"
    elif error["type"] == "literal_error":
        msg = f"expected {error['ctx']['expected']}, got {error['input']!r}"
    return f"{loc or '(top level)'}: {msg}"


def _check_schedules(spec: ProjectFile, file: Path) -> None:
    crons = [("schedule.default", spec.schedule.default)] + [
        (f"sources[{i}] ({s.name}).schedule", s.schedule) for i, s in enumerate(spec.sources)
    ]
    crons += [("schedule.full_tests", spec.schedule.full_tests)] if any(c for _, c in crons) else []
    if not any(cron for _, cron in crons):
        return
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from croniter import croniter

    for where, cron in crons:
        if cron and not croniter.is_valid(cron):
            raise ConfigError(f"{file}: {where}: {cron!r} is not a cron expression "
                              "(5 fields, or 6 with seconds last)")  # fmt: skip
    try:
        ZoneInfo(spec.schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{file}: schedule.timezone: unknown time zone {spec.schedule.timezone!r}"
        ) from None


def load_project(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Project:
    env = os.environ if env is None else env
    file = find_project_file(path)
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level")
    raw = _interpolate(raw, env, "", file)
    try:
        spec = ProjectFile.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(_describe(e) for e in exc.errors())  # type: ignore[arg-type]
        raise ConfigError(f"{file}: {details}") from None
    _check_schedules(spec, file)
    names = [s.name for s in spec.sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{file}: sources: names must be unique, repeated: {', '.join(dupes)}")
    try:
        settings = LakeSettings.resolve(spec.lake.url, file.parent, env, spec.lake.catalog)
    except LakeConfigError as exc:
        key = "lake.catalog" if "catalog" in str(exc) else "lake.url"
        raise ConfigError(f"{file}: {key}: {exc}") from None
    _register_secrets(spec, settings)
    return Project(path=file, spec=spec, lake=Lake(settings))


def _register_secrets(spec: ProjectFile, settings: LakeSettings) -> None:
    """Every configured secret, for `lake.redact` to mask wherever it shows up."""
    for source in spec.sources:
        if source.http is not None:
            register(*source.http.auth.secrets())
        if source.database is not None:
            register_dsn(source.database.url)
        if source.mqtt is not None:
            register(source.mqtt.password)
    if settings.s3 is not None:
        register(settings.s3.secret_access_key, settings.s3.session_token)
    register_dsn(settings.catalog)
    register(spec.alerts.webhook_url, spec.collector.token)
    if spec.serving.postgres.enabled:
        register_dsn(spec.serving.postgres.url)
    register(spec.serving.postgres.reader_password)
