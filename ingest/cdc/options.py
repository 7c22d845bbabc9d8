"""`database.cdc` in `lakehouse.yml`: change data capture options of a postgres source."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CdcOptions(_Strict):
    """Change data capture from PostgreSQL's write-ahead log, through a logical
    replication slot and the wal2json plugin. The server needs `wal_level = logical`; the
    user needs the REPLICATION attribute (or to own the slot) and SELECT on the tables."""

    mode: Literal["log", "diff"] = Field(
        "log",
        description="log: read the write-ahead log. diff: compare each full dump with the "
        "lake's current state by primary key (no replication rights needed; changes that "
        "cancel out between two dumps are not seen). SQLite sources always diff.",
    )
    slot: str | None = Field(
        None, description="Replication slot (default: lakehouse_<source>). One per source."
    )
    create_slot: bool = Field(
        True, description="Create the slot when missing (else a missing slot is an error)."
    )
    max_batch_changes: int = Field(
        100_000, ge=1, description="Changes per batch, rounded up to whole transactions (a "
        "transaction is never split; a large one is spooled to disk, not held in memory).",
    )  # fmt: skip
    poll_s: float = Field(0.2, gt=0, description="`lakehouse cdc --follow`: wait between polls.")
    lag_warning_mb: float = Field(
        1024, gt=0, description="Warn when the slot holds back more WAL than this: the "
        "server keeps every byte of WAL a slot has not confirmed.",
    )  # fmt: skip

    @field_validator("slot")
    @classmethod
    def _slot(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9_]{1,63}", value):
            raise ValueError("a slot name is 1-63 of a-z, 0-9 and _")
        return value
