"""One storage interface over a local folder and an S3 bucket.

Both offer the same small set of operations on keys (see `lake.layout`). Objects become
visible atomically: locally by writing a hidden temporary file and renaming it; on S3 by
writing a staging object and copying it server-side to its key (an object appears only
when its upload or copy completes).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from lake import layout
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
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete an object; a missing object is not an error."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[str]:
        """Keys of the committed objects under a prefix (in-progress writes excluded)."""

    @abstractmethod
    def move(self, key: str, new_key: str) -> None:
        """Move an object; readers see it at one key or the other (on S3, briefly at both:
        a copy, then a delete)."""

    @abstractmethod
    def begin_write(self, key: str) -> str:
        """The URI a writer (DuckDB COPY) should write the object for `key` to."""

    @abstractmethod
    def finish_write(self, key: str, written_uri: str) -> None:
        """Make the object written to `written_uri` visible under `key`, atomically."""

    @abstractmethod
    def abort_write(self, written_uri: str) -> None:
        """Remove what an interrupted writer left behind (nothing visible to readers)."""

    @abstractmethod
    def cleanup_incomplete(self, prefix: str) -> int:
        """Remove leftovers of crashed writers under a prefix; returns how many."""


class LocalStorage(Storage):
    """The embedded default: a folder on local disk."""

    TMP_SUFFIX = ".tmp"

    @property
    def root(self) -> Path:
        return Path(self.settings.url)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise LakeError(f"key {key!r} escapes the lake folder {self.root}")
        return path

    def _tmp_for(self, path: Path) -> Path:
        return path.with_name(f".{path.name}.{uuid.uuid4().hex}{self.TMP_SUFFIX}")

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
        tmp = self._tmp_for(path)
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def move(self, key: str, new_key: str) -> None:
        dest = self._path(new_key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._path(key), dest)

    def list(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix)
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                yield path.relative_to(self.root).as_posix()

    def begin_write(self, key: str) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(self._tmp_for(path))

    def finish_write(self, key: str, written_uri: str) -> None:
        src = Path(written_uri)
        with open(src, "rb") as fh:
            os.fsync(fh.fileno())
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)

    def abort_write(self, written_uri: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            Path(written_uri).unlink()

    def cleanup_incomplete(self, prefix: str) -> int:
        base = self._path(prefix)
        removed = 0
        if base.exists():
            for path in base.rglob(f".*{self.TMP_SUFFIX}"):
                path.unlink(missing_ok=True)
                removed += 1
        return removed


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

    def move(self, key: str, new_key: str) -> None:
        bucket = self.settings.bucket
        self.client.copy({"Bucket": bucket, "Key": self._key(key)}, bucket, self._key(new_key))
        self.client.delete_object(Bucket=bucket, Key=self._key(key))

    def list(self, prefix: str) -> Iterator[str]:
        strip = len(self.settings.prefix) + 1 if self.settings.prefix else 0
        paginator = self.client.get_paginator("list_objects_v2")
        full = self._key(prefix).rstrip("/") + "/"
        for page in paginator.paginate(Bucket=self.settings.bucket, Prefix=full):
            for obj in page.get("Contents", []):
                yield obj["Key"][strip:]

    def begin_write(self, key: str) -> str:
        # The writer's upload completes (and would become visible) before the batch's
        # quarantine is written, so it goes to a staging key outside the readers' globs;
        # `finish_write` publishes it with a server-side copy, atomic for the target.
        return self.uri(layout.staging_key(key, uuid.uuid4().hex))

    def _staged_key(self, key: str, written_uri: str) -> str:
        staged = written_uri[len(self.settings.url) + 1 :]
        # the batch may be published elsewhere than planned (diverted to quarantine)
        if not written_uri.startswith(self.settings.url + "/") or not staged.startswith(
            f"{layout.STAGING}/"
        ):
            raise LakeError(f"unexpected staged object {written_uri} for {key}")
        return staged

    def finish_write(self, key: str, written_uri: str) -> None:
        staged = self._key(self._staged_key(key, written_uri))
        bucket = self.settings.bucket
        self.client.copy({"Bucket": bucket, "Key": staged}, bucket, self._key(key))
        self.client.delete_object(Bucket=bucket, Key=staged)

    def abort_write(self, written_uri: str) -> None:
        if written_uri.startswith(self.settings.url + "/"):
            self.delete(written_uri[len(self.settings.url) + 1 :])

    def cleanup_incomplete(self, prefix: str) -> int:
        """Delete staged objects and abort unfinished uploads of crashed writers."""
        removed = 0
        staged_prefix = f"{layout.STAGING}/{prefix}"
        for key in list(self.list(staged_prefix)):
            self.delete(key)
            removed += 1
        full = self._key(staged_prefix).rstrip("/") + "/"
        response = self.client.list_multipart_uploads(Bucket=self.settings.bucket, Prefix=full)
        for upload in response.get("Uploads", []):
            self.client.abort_multipart_upload(
                Bucket=self.settings.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
            removed += 1
        return removed


def open_storage(settings: LakeSettings) -> Storage:
    return S3Storage(settings) if settings.is_s3 else LocalStorage(settings)
