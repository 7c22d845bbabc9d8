"""Where the gates meet the lake and the warehouse: which data each gate validates."""

from __future__ import annotations

from collections import defaultdict

import duckdb

from expectations import GateResult, load_suites, run_gate
from lake import BatchRecord, all_states, mark_gate
from lake.duck import connection_config, quote_ident, quote_str
from pipeline.config import Project

Batch = tuple[str, str, BatchRecord]


def _gx_config(project: Project) -> dict:
    config: dict = dict(connection_config())
    if project.lake.settings.s3 is not None:
        config.update(project.lake.settings.s3.duckdb_config())
    return config


def unchecked_batches(project: Project, everything: bool = False) -> list[Batch]:
    """Batches the raw gate has not passed yet (new, or failed before); or all of them."""
    return [
        (s.source, s.table, b)
        for s in all_states(project.lake.storage)
        for b in s.batches
        if everything or b.gate != "passed"
    ]


def check_raw(project: Project, everything: bool = False) -> GateResult:
    """Validate the raw batches that have not passed the gate yet (their cost grows with
    the new data, not the lake); record the verdict on each batch."""
    suites = load_suites(project.expectations_dir, "raw")
    batches = unchecked_batches(project, everything)
    by_table: dict[tuple[str, str], list[BatchRecord]] = defaultdict(list)
    for source, table, record in batches:
        by_table[(source, table)].append(record)
    wanted = {s.target for s in suites}
    gate_db = project.warehouse_dir / "gate_raw.duckdb"
    project.warehouse_dir.mkdir(parents=True, exist_ok=True)
    gate_db.unlink(missing_ok=True)
    tables: dict[str, tuple[str, str]] = {}
    load_ids: list[str] = []
    con = project.lake.connect(gate_db)
    try:
        for (source, table), records in sorted(by_table.items()):
            target = f"{source}.{table}"
            if target not in wanted:
                continue
            uris = ", ".join(quote_str(project.lake.uri(r.key)) for r in records)
            # GX reflects columns without the schema on DuckDB: keep views in `main`
            view = f"{source}__{table}"
            con.execute(
                f"CREATE VIEW main.{quote_ident(view)} AS "
                f"SELECT * FROM read_parquet([{uris}], union_by_name = true)"
            )
            tables[target] = ("main", view)
            load_ids += [r.load_id for r in records]
    finally:
        con.close()
    context = f"batches {', '.join(load_ids)}" if load_ids else ""
    result = run_gate("raw", suites, gate_db, tables, _gx_config(project), context=context)
    failed_targets = {r.target for r in result.blocking}
    for (source, table), records in by_table.items():
        outcome = "failed" if f"{source}.{table}" in failed_targets else "passed"
        mark_gate(project.lake.storage, source, table, {r.load_id for r in records}, outcome)
    return result


def mart_tables(project: Project) -> list[str]:
    if not project.build_db.exists():
        return []
    con = duckdb.connect(str(project.build_db), read_only=True)
    try:
        rows = con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY 1",
            [project.spec.warehouse.marts_schema],
        ).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def check_marts(project: Project) -> GateResult:
    """Validate the freshly built marts in the build database, before publishing."""
    suites = load_suites(project.expectations_dir, "marts")
    schema = project.spec.warehouse.marts_schema
    tables = {name: (schema, name) for name in mart_tables(project)}
    return run_gate("marts", suites, project.build_db, tables, _gx_config(project))
