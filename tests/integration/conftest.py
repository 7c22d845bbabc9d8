"""Real services for integration tests: a SeaweedFS S3 server on 127.0.0.1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.postgres import psql
from tests.seaweedfs import s3_client, seaweedfs_server


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real S3-compatible server for the session; yields the standard AWS_* variables."""
    with seaweedfs_server(tmp_path_factory.mktemp("seaweedfs")) as env:
        yield env


@pytest.fixture
def s3_bucket(seaweedfs: dict[str, str]) -> tuple[str, dict[str, str]]:
    """A fresh bucket per test; returns (bucket name, env)."""
    name = f"lake-{uuid.uuid4().hex[:10]}"
    s3_client(seaweedfs).create_bucket(Bucket=name)
    return name, seaweedfs


@pytest.fixture(params=["local", "s3"])
def lake_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A real PostgreSQL server for the session; yields a libpq URL."""
    from tests.postgres import postgres_server

    with postgres_server() as dsn:
        yield dsn


@pytest.fixture(params=["sqlite", "postgres"])
def catalog(request: pytest.FixtureRequest) -> str | None:
    """The default SQLite catalog, or a fresh PostgreSQL database as the catalog."""
    if request.param == "sqlite":
        return None
    server = request.getfixturevalue("postgres")
    name = f"lake_{uuid.uuid4().hex[:8]}"
    psql(server, f"CREATE DATABASE {name}")
    port = server.rsplit(":", 1)[1].split("/")[0]
    return f"postgres:host=127.0.0.1 port={port} user=postgres dbname={name}"
