"""What was set aside, why, and bringing it back: `lakehouse quarantine list|show|release`.

A batch is quarantined whole when the raw gate failed it or its schema changed under a
`quarantine` policy. Release re-checks it (the source's schema policy, then the raw
gate's suite on its rows) and admits it into its raw table in one transaction.
"""

from __future__ import annotations

from typing import Any

from lake import BatchRecord, all_states, describe_change, layout, release_batch
from lake.duck import quote_ident
from pipeline.config import Project
from pipeline.errors import StageFailed
from pipeline.gates import Check, gate_lake_batches, primary_key


def quarantined(project: Project) -> list[BatchRecord]:
    return [b for s in project.lake.states() for b in s.batches if not b.in_raw_zone]


def show(
    project: Project, load_id: str, limit: int = 10
) -> tuple[BatchRecord, list[str], list[Any]]:
    """The batch, and a sample of its rows."""
    batch = _find(project, load_id)
    con = project.lake.connect()
    try:
        cur = con.execute(
            f"SELECT * FROM lake.{layout.QUARANTINE}.{quote_ident(batch.quarantine_table or '')} "
            f"LIMIT {int(limit)}"
        )
        return batch, [d[0] for d in cur.description or []], cur.fetchall()
    finally:
        con.close()


def _find(project: Project, load_id: str) -> BatchRecord:
    found = [b for b in quarantined(project) if b.load_id == load_id]
    if not found:
        raise StageFailed(
            "quarantine", f"no quarantined batch {load_id!r}: see `lakehouse quarantine list`"
        )
    return found[0]


def release(project: Project, load_id: str, run_id: str | None = None) -> BatchRecord:
    """Re-check a quarantined batch and admit it into its raw table."""
    batch = _find(project, load_id)
    name = f"{batch.source}.{batch.table}"
    src = next((s for s in project.spec.sources if s.name == batch.source), None)
    con = project.lake.connect()
    try:
        with project.lake.table_lock(batch.source, batch.table):
            states = all_states(con)
            state = next(s for s in states if (s.source, s.table) == (batch.source, batch.table))
            current = state.columns
            if current is not None and batch.columns and batch.columns != current:
                policy = src.schema_policy if src else "evolve"
                if policy != "evolve":
                    raise StageFailed("quarantine", (
                        f"{name} batch {load_id} changes the schema "
                        f"({describe_change(current, batch.columns)}) and the source's "
                        f"schema_policy is {policy}: set it to evolve to admit it"))  # fmt: skip
            relation = f"lake.{layout.QUARANTINE}.{quote_ident(batch.quarantine_table or '')}"
            checks: dict[str, list[Check]] = {name: [(load_id, relation, None, None)]}
            result = gate_lake_batches(project, "raw_release", checks, con, states, docs=False)
            if not result.ok:
                failures = "; ".join(r.describe() for r in result.blocking)
                raise StageFailed("quarantine", f"{name} batch {load_id} still fails the raw "
                                  f"gate: {failures}")  # fmt: skip
            return release_batch(con, state, load_id, primary_key(project, *name.split(".")),
                                 run_id)  # fmt: skip
    finally:
        con.close()
