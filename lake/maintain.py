"""Keeping the lake small and fast without stopping readers: `lakehouse maintain`.

Flush inlined rows to Parquet, merge small files, expire snapshots past the retention
(never the snapshots a published mart set still reads), and delete files no snapshot
references: old ones, and orphans left by writers killed before their commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from lake import layout
from lake.batches import in_transaction
from lake.config import TABLES_DIR
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
    # the published set must stay readable, however old
    row = con.execute(
        f"SELECT min(s.snapshot_time) FROM lake.{layout.PUBLICATIONS} p "
        "JOIN ducklake_snapshots('lake') s ON s.snapshot_id = p.build_snapshot "
        f"WHERE p.published_at >= ?",
        [cutoff],
    ).fetchone()
    current = con.execute(
        f"SELECT s.snapshot_time FROM lake.{layout.PUBLICATIONS} p "
        "JOIN ducklake_snapshots('lake') s ON s.snapshot_id = p.build_snapshot "
        "ORDER BY p.published_at DESC LIMIT 1"
    ).fetchone()
    keep_from = min(
        [t for t in (cutoff, row[0] if row else None, current[0] if current else None) if t]
    )

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
