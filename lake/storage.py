"""Objects outside the tables: run records and original documents, on a local folder or
an S3 bucket, behind one small interface.

Table data never goes through here: DuckLake owns it (see `lake.batches`).
"""

from __future__ import annotations

import builtins
import contextlib
import os
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from lake.config import LakeSettings
from lake.errors import LakeError


class Storage(ABC):
    """Keys are `/`-separated paths relative to the lake URL."""

    def __init__(self, settings: LakeSettings) -> None:
        self.settings = settings

    def uri(self, key: str) -> str:
        """The full URI of a key, as DuckDB, dbt and pyarrow read it."""
        return f"{self.settings.url}/{key}"

    def ensure_parent(self, key: str) -> None:
        """Before a tool (DuckDB) writes `uri(key)` itself: make its folder exist."""
        return None

    @abstractmethod
    def read_bytes(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such object."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> None:
        """Write an object atomically (readers see the old object or the new one)."""

    @abstractmethod
    def write_file(self, key: str, path: str) -> None:
        """A local file's bytes under `key`, streamed (memory does not grow with it)."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete an object; a missing object is not an error."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[str]:
        """Keys of the objects under a prefix."""


class LocalStorage(Storage):
    """The embedded default: a folder on local disk."""

    @property
    def root(self) -> Path:
        return Path(self.settings.url)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise LakeError(f"key {key!r} escapes the lake folder {self.root}")
        return path

    def ensure_parent(self, key: str) -> None:
        self._path(key).parent.mkdir(parents=True, exist_ok=True)

    def read_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def write_file(self, key: str, path: str) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        shutil.copyfile(path, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def list(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix)
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                yield path.relative_to(self.root).as_posix()


class S3Storage(Storage):
    """An S3-compatible bucket (AWS S3, MinIO, SeaweedFS) under an optional prefix."""

    @cached_property
    def client(self) -> Any:
        import boto3

        assert self.settings.s3 is not None
        return boto3.client("s3", **self.settings.s3.boto3_kwargs())

    def _key(self, key: str) -> str:
        if ".." in key.split("/"):
            raise LakeError(f"key {key!r} escapes the lake prefix")
        prefix = self.settings.prefix
        return f"{prefix}/{key}" if prefix else key

    def read_bytes(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.settings.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey:
            return None
        data: bytes = response["Body"].read()
        return data

    def write_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.settings.bucket, Key=self._key(key), Body=data)

    def write_file(self, key: str, path: str) -> None:
        self.client.upload_file(path, self.settings.bucket, self._key(key))  # multipart

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.settings.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.settings.bucket, Key=self._key(key))

    def list(self, prefix: str) -> Iterator[str]:
        strip = len(self.settings.prefix) + 1 if self.settings.prefix else 0
        paginator = self.client.get_paginator("list_objects_v2")
        full = self._key(prefix).rstrip("/") + "/"
        for page in paginator.paginate(Bucket=self.settings.bucket, Prefix=full):
            for obj in page.get("Contents", []):
                yield obj["Key"][strip:]

    def incomplete_uploads(self, prefix: str = "") -> builtins.list[str]:
        """Keys of multipart uploads that never completed (a writer killed mid-upload)."""
        full = self._key(prefix) if prefix else (self.settings.prefix or "")
        response = self.client.list_multipart_uploads(Bucket=self.settings.bucket, Prefix=full)
        return [u["Key"] for u in response.get("Uploads", [])]

    def abort_incomplete_uploads(self, prefix: str = "", older_than: Any = None) -> int:
        """Abort multipart uploads (under a prefix) begun before `older_than`."""
        full = self._key(prefix) if prefix else (self.settings.prefix or "")
        response = self.client.list_multipart_uploads(Bucket=self.settings.bucket, Prefix=full)
        uploads = [
            u for u in response.get("Uploads", [])
            if older_than is None or u.get("Initiated") is None or u["Initiated"] < older_than
        ]  # fmt: skip
        for upload in uploads:
            self.client.abort_multipart_upload(
                Bucket=self.settings.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        return len(uploads)


def open_storage(settings: LakeSettings) -> Storage:
    return S3Storage(settings) if settings.is_s3 else LocalStorage(settings)
