"""Keeping the lake small and fast without stopping readers: `lakehouse maintain`.

Flush inlined rows to Parquet, merge small files, expire snapshots past the retention
(never the snapshots a published mart set still reads), and delete files no snapshot
references: old ones, and orphans left by writers killed before their commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from lake.batches import in_transaction
from lake.config import TABLES_DIR
from lake.publish import publications
from lake.storage import S3Storage, Storage


@dataclass
class MaintainReport:
    flushed: bool
    merged: bool
    expired_before: str
    files_deleted: int
    orphans_deleted: int


def maintain(
    con: duckdb.DuckDBPyConnection,
    retention_days: float = 7,
    orphan_age_hours: float = 1,
    storage: Storage | None = None,
) -> MaintainReport:
    """`con` has the lake attached. Orphans younger than `orphan_age_hours` are kept: they
    may be the file of a batch being committed right now. With an S3 `storage`, uploads a
    killed writer never completed are aborted too."""
    now = datetime.now(UTC)
    cutoff = now - timedelta(days=retention_days)
    # every published set of the retention window, and the one in place however old,
    # must stay readable: each of their marts at its own snapshot
    history = publications(con)
    kept = [p for p in history if p.published_at >= cutoff] + history[-1:]
    oldest = min((s for p in kept for s in p.snapshots.values()), default=None)
    row = con.execute(
        "SELECT snapshot_time FROM ducklake_snapshots('lake') WHERE snapshot_id = ?", [oldest]
    ).fetchone() if oldest is not None else None  # fmt: skip
    keep_from = min([cutoff] + ([row[0]] if row and row[0] else []))

    @in_transaction
    def step(sql: str, params: list | None = None) -> int:
        result = con.execute(sql, params or []).fetchall()
        return len(result)

    step("CALL ducklake_flush_inlined_data('lake')")
    step("CALL ducklake_merge_adjacent_files('lake')")
    step("CALL ducklake_expire_snapshots('lake', older_than => ?)", [keep_from])
    deleted = step("CALL ducklake_cleanup_old_files('lake', cleanup_all => true)")
    orphans = step(
        "CALL ducklake_delete_orphaned_files('lake', older_than => ?)",
        [now - timedelta(hours=orphan_age_hours)],
    )
    if isinstance(storage, S3Storage):
        orphans += storage.abort_incomplete_uploads(
            TABLES_DIR, older_than=now - timedelta(hours=orphan_age_hours)
        )
    return MaintainReport(True, True, str(keep_from), deleted, orphans)
