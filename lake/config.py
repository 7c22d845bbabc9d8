"""Where the lake is and how to reach it: read once, handed to every tool.

The S3 settings come from the standard AWS variables only; they are read once by
`S3Settings.from_env()` and then converted for each tool that touches the lake:
boto3 (`boto3_kwargs`), pyarrow (`pyarrow_fs`), DuckDB (`duckdb_secret_sql`),
dbt (`dbt_env`, read by `dbt_project/profiles.yml`) and GX (`duckdb_config`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lake.errors import LakeConfigError

LAKE_URL_ENV = "LAKEHOUSE_LAKE_URL"
CATALOG_ENV = "LAKEHOUSE_CATALOG"
RETRY_ENV = "LAKEHOUSE_S3_RETRY_S"
DEFAULT_LAKE = "data/lake"
TABLES_DIR = "tables"  # DuckLake's DATA_PATH, below the lake URL


@dataclass(frozen=True)
class S3Settings:
    """Connection settings for an S3-compatible object store (AWS S3, MinIO, SeaweedFS)."""

    endpoint_url: str | None = None
    """Full endpoint URL (`AWS_ENDPOINT_URL`), e.g. http://127.0.0.1:9000; None means AWS."""
    region: str = "us-east-1"
    """Region (`AWS_REGION`, then `AWS_DEFAULT_REGION`)."""
    access_key_id: str | None = field(default=None, repr=False)
    """Access key (`AWS_ACCESS_KEY_ID`); never printed."""
    secret_access_key: str | None = field(default=None, repr=False)
    """Secret key (`AWS_SECRET_ACCESS_KEY`); never printed."""
    session_token: str | None = field(default=None, repr=False)
    """Session token (`AWS_SESSION_TOKEN`), for temporary credentials."""
    retry_deadline_s: float = 30.0
    """How long an object-store call keeps retrying a transient error (connection refused,
    timeout, 5xx, throttling) with doubling waits (`LAKEHOUSE_S3_RETRY_S`)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Settings:
        env = os.environ if env is None else env
        endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
        if endpoint and urlparse(endpoint).scheme not in ("http", "https"):
            raise LakeConfigError(
                f"AWS_ENDPOINT_URL={endpoint!r}: expected a URL such as http://127.0.0.1:9000"
            )
        return cls(
            endpoint_url=endpoint.rstrip("/") if endpoint else None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            session_token=env.get("AWS_SESSION_TOKEN") or None,
            retry_deadline_s=_seconds(env, RETRY_ENV, 30.0),
        )

    def retry_plan(self) -> tuple[int, int]:
        """(retries, first wait in ms): waits doubling from 250 ms that add up to the
        deadline (30 s: 7 retries, 31.75 s)."""
        retries = max(1, math.ceil(math.log2(self.retry_deadline_s / 0.25 + 1)))
        return retries, 250

    def duckdb_retry_sql(self) -> str:
        """DuckDB's httpfs, as patient as boto3 (its default gives up after 2.1 s)."""
        retries, wait_ms = self.retry_plan()
        return (f"SET http_retries = {retries}; SET http_retry_wait_ms = {wait_ms}; "
                "SET http_retry_backoff = 2")  # fmt: skip

    # -- derived forms, one per tool --------------------------------------------------
    @property
    def use_ssl(self) -> bool:
        return not (self.endpoint_url or "https://").startswith("http://")

    @property
    def endpoint_host(self) -> str:
        """host:port without scheme, as DuckDB wants it."""
        if not self.endpoint_url:
            return "s3.amazonaws.com"
        return urlparse(self.endpoint_url).netloc

    @property
    def url_style(self) -> str:
        """Custom endpoints (MinIO, SeaweedFS) need path-style URLs; AWS uses virtual hosts."""
        return "path" if self.endpoint_url else "vhost"

    def boto3_kwargs(self) -> dict[str, Any]:
        from botocore.config import Config

        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
            "config": Config(
                s3={"addressing_style": "path" if self.endpoint_url else "auto"},
                retries={"max_attempts": self.retry_plan()[0] + 1, "mode": "standard"},
            ),
        }

    def pyarrow_fs(self) -> Any:
        from pyarrow import fs

        return fs.S3FileSystem(
            access_key=self.access_key_id,
            secret_key=self.secret_access_key,
            session_token=self.session_token,
            region=self.region,
            endpoint_override=self.endpoint_host if self.endpoint_url else None,
            scheme="https" if self.use_ssl else "http",
            force_virtual_addressing=not self.endpoint_url,
        )

    def duckdb_secret_sql(self, name: str = "lake_s3") -> str:
        """A temporary (in-memory) DuckDB secret; it is never written to a database file."""
        parts = [
            "TYPE s3",
            f"REGION {_sql_str(self.region)}",
            f"ENDPOINT {_sql_str(self.endpoint_host)}",
            f"URL_STYLE {_sql_str(self.url_style)}",
            f"USE_SSL {'true' if self.use_ssl else 'false'}",
        ]
        if self.access_key_id:
            parts.append(f"KEY_ID {_sql_str(self.access_key_id)}")
            parts.append(f"SECRET {_sql_str(self.secret_access_key or '')}")
        if self.session_token:
            parts.append(f"SESSION_TOKEN {_sql_str(self.session_token)}")
        return f"CREATE OR REPLACE TEMPORARY SECRET {name} ({', '.join(parts)})"

    def duckdb_config(self) -> dict[str, str]:
        """The same settings as DuckDB connect-time options (for clients that cannot run SQL
        before use, such as GX's SQLAlchemy engine)."""
        config = {
            "s3_region": self.region,
            "s3_endpoint": self.endpoint_host,
            "s3_url_style": self.url_style,
            "s3_use_ssl": "true" if self.use_ssl else "false",
        }
        if self.access_key_id:
            config["s3_access_key_id"] = self.access_key_id
            config["s3_secret_access_key"] = self.secret_access_key or ""
        if self.session_token:
            config["s3_session_token"] = self.session_token
        return config

    def dbt_env(self) -> dict[str, str]:
        """The standard variables that `dbt_project/profiles.yml` reads."""
        retries, wait_ms = self.retry_plan()
        env = {"AWS_REGION": self.region, "LAKEHOUSE_HTTP_RETRIES": str(retries),
               "LAKEHOUSE_HTTP_RETRY_WAIT_MS": str(wait_ms)}  # fmt: skip
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        if self.access_key_id:
            env["AWS_ACCESS_KEY_ID"] = self.access_key_id
            env["AWS_SECRET_ACCESS_KEY"] = self.secret_access_key or ""
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env


@dataclass(frozen=True)
class LakeSettings:
    """The lake: a local folder (the embedded default) or an S3 bucket and prefix, and the
    DuckLake catalog that makes its Parquet files tables."""

    url: str
    """`/abs/path` for a local folder or `s3://bucket/prefix`."""
    s3: S3Settings | None = None
    """Set when the lake is on S3."""
    catalog: str = ""
    """`sqlite:/abs/file.sqlite` (the default: several processes on one host) or
    `postgres:<libpq DSN>` (shared by hosts). Never a DuckDB file: that locks out every
    other process."""

    @classmethod
    def resolve(
        cls,
        configured: str | None,
        base_dir: Path,
        env: Mapping[str, str] | None = None,
        catalog: str | None = None,
    ) -> LakeSettings:
        """Env var first (`LAKEHOUSE_LAKE_URL`, `LAKEHOUSE_CATALOG`), then the config
        file's values, then `./data/lake` with its catalog beside the data."""
        env = os.environ if env is None else env
        url = env.get(LAKE_URL_ENV) or configured or DEFAULT_LAKE
        catalog = env.get(CATALOG_ENV) or catalog or None
        if url.startswith("s3://"):
            parsed = urlparse(url)
            if not parsed.netloc:
                raise LakeConfigError(f"lake url {url!r}: expected s3://bucket[/prefix]")
            url = url.rstrip("/")
            # an S3 lake's SQLite catalog is a local file: one per bucket and prefix
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", url[5:])
            default = base_dir / "data" / "catalogs" / f"{slug}.sqlite"
            return cls(url, S3Settings.from_env(env), _catalog(catalog, default, base_dir))
        if "://" in url:
            raise LakeConfigError(
                f"lake url {url!r}: expected a local folder or s3://bucket[/prefix]"
            )
        path = Path(url).expanduser()
        if not path.is_absolute():
            path = (base_dir / path).resolve()
        return cls(str(path), None, _catalog(catalog, path / "catalog.sqlite", base_dir))

    @property
    def is_s3(self) -> bool:
        return self.s3 is not None

    @property
    def bucket(self) -> str:
        return urlparse(self.url).netloc

    @property
    def prefix(self) -> str:
        return urlparse(self.url).path.strip("/")

    @property
    def data_path(self) -> str:
        """DuckLake's DATA_PATH: where every table's Parquet files live."""
        return f"{self.url}/{TABLES_DIR}/"

    @property
    def catalog_kind(self) -> str:
        return self.catalog.split(":", 1)[0]

    @property
    def catalog_path(self) -> Path | None:
        """The SQLite catalog file, or None for PostgreSQL."""
        return Path(self.catalog[7:]) if self.catalog_kind == "sqlite" else None

    @property
    def catalog_moves_with_data(self) -> bool:
        """A local lake with its catalog inside: moved or mounted at another path, the
        catalog's recorded data path is the old one, and the folder's own is right."""
        path = self.catalog_path
        return not self.is_s3 and path is not None and path.parent == Path(self.url)

    @property
    def ducklake_uri(self) -> str:
        """What `ATTACH` takes: `ducklake:sqlite:/path` or `ducklake:postgres:dbname=...`."""
        return f"ducklake:{self.catalog}"


def _catalog(value: str | None, default: Path, base_dir: Path) -> str:
    """`sqlite:PATH` (relative to the project), `postgres:DSN`, or a postgresql:// URL."""
    if not value:
        return f"sqlite:{default}"
    if value.startswith(("postgresql://", "postgres://")):
        return f"postgres:{value}"
    kind, sep, rest = value.partition(":")
    if not sep or kind not in ("sqlite", "postgres") or not rest:
        raise LakeConfigError(
            f"lake catalog {value!r}: expected sqlite:PATH or postgres:DSN "
            "(e.g. postgres:dbname=lake host=db user=lake)"
        )
    if kind == "sqlite":
        path = Path(rest).expanduser()
        return f"sqlite:{path if path.is_absolute() else (base_dir / path).resolve()}"
    return value


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name)
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise LakeConfigError(f"{name}={value!r}: expected a number of seconds") from None
    if seconds < 0:
        raise LakeConfigError(f"{name}={value!r}: expected a number of seconds >= 0")
    return seconds
