"""Where the gates meet the lake and the warehouse: which data each gate validates, and
what happens to data that fails."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import duckdb

from expectations import GateResult, load_suites, run_gate
from lake import BatchRecord, TableState, all_states, load_state, mark_gate, quarantine_batch
from lake.duck import connection_config, quote_ident, quote_str
from pipeline.config import Project


def _gx_config(project: Project) -> dict:
    config: dict = dict(connection_config())
    if project.lake.settings.s3 is not None:
        config.update(project.lake.settings.s3.duckdb_config())
    return config


def _raw_view(project: Project, con: duckdb.DuckDBPyConnection, view: str, keys: list[str]) -> None:
    """`view` over the given batch objects (columns by name across batches)."""
    uris = ", ".join(quote_str(project.lake.uri(k)) for k in keys)
    con.execute(
        f"CREATE VIEW main.{quote_ident(view)} AS SELECT * FROM "
        f"read_parquet([{uris}], union_by_name = true, hive_partitioning = false)"
    )


def check_raw(project: Project, everything: bool = False) -> GateResult:
    """Validate each raw batch that has not passed the gate yet, on its own (the cost grows
    with the new data, not the lake). A batch that fails a critical expectation is moved
    out of the raw zone into quarantine, so staging never reads it; the others pass."""
    suites = load_suites(project.expectations_dir, "raw")
    wanted = {s.target for s in suites}
    states = all_states(project.lake.storage)
    by_table: dict[tuple[str, str], list[BatchRecord]] = defaultdict(list)
    for s in states:  # in the raw zone, not passed yet (new ones); or all of them
        for b in s.batches:
            if b.in_raw_zone and (everything or b.gate != "passed"):
                by_table[(s.source, s.table)].append(b)
    gate_db = project.warehouse_dir / "gate_raw.duckdb"
    project.warehouse_dir.mkdir(parents=True, exist_ok=True)
    gate_db.unlink(missing_ok=True)
    tables: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    con = project.lake.connect(gate_db)
    try:
        _context_tables(project, con, states)
        for (source, table), records in sorted(by_table.items()):
            if f"{source}.{table}" not in wanted:
                continue
            for n, record in enumerate(records):
                # GX reflects columns without the schema on DuckDB: keep views in `main`
                view = f"{source}__{table}__{n}"
                _raw_view(project, con, view, [record.key])
                tables[f"{source}.{table}"].append((record.load_id, "main", view))
    finally:
        con.close()
    result = run_gate("raw", suites, gate_db, dict(tables), _gx_config(project),
                      docs_dir=project.warehouse_dir / "data_docs" / "raw")  # fmt: skip
    failed: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in result.blocking:
        failed[(r.target, r.batch)].append(r.expectation)
    storage = project.lake.storage
    for (source, table), records in by_table.items():
        target = f"{source}.{table}"
        passed = {r.load_id for r in records if (target, r.load_id) not in failed}
        if target in wanted:
            mark_gate(storage, source, table, passed, "passed")
        for record in records:
            reasons = failed.get((target, record.load_id))
            if reasons:
                quarantine_batch(storage, source, table, record.load_id,
                                 "failed the raw gate: " + "; ".join(reasons))  # fmt: skip
    return result


def _context_tables(
    project: Project, con: duckdb.DuckDBPyConnection, states: list[TableState]
) -> None:
    """What cross-table expectations may read: every raw table as `<source>__<table>` (its
    batches in the raw zone) and `lakehouse_batches` (every batch's rows and verdict)."""
    con.execute(
        "CREATE TABLE lakehouse_batches (source VARCHAR, table_name VARCHAR, load_id VARCHAR, "
        "rows BIGINT, committed_at TIMESTAMPTZ, gate VARCHAR)"
    )
    for s in states:
        for b in s.batches:
            con.execute("INSERT INTO lakehouse_batches VALUES (?, ?, ?, ?, ?, ?)",
                        [s.source, s.table, b.load_id, b.rows, b.committed_at, b.gate])  # fmt: skip
        keys = [b.key for b in s.batches if b.in_raw_zone]
        if keys:
            _raw_view(project, con, f"{s.source}__{s.table}", keys)


def suggest_suite(project: Project, target: str, force: bool = False) -> tuple[Path, int]:
    """Profile a raw table (`source.table`) or a mart and write a starting suite for it."""
    from expectations.errors import SuiteError
    from expectations.suggest import propose, suite_yaml

    if "." in target:
        source, table = target.split(".", 1)
        state = load_state(project.lake.storage, source, table)
        keys = [b.key for b in state.batches if b.in_raw_zone]
        if not keys:
            raise SuiteError(f"{target}: no batches in the raw zone: run `lakehouse ingest`")
        con = project.lake.connect()
        _raw_view(project, con, "profiled", keys)
        gate, name = "raw", f"raw__{source}__{table}"
    else:
        if target not in mart_tables(project):
            raise SuiteError(f"{target}: not a mart in {project.build_db}: run `lakehouse build`")
        con = duckdb.connect(str(project.build_db), read_only=True)
        con.execute(
            f"CREATE TEMP VIEW profiled AS SELECT * FROM "
            f"{quote_ident(project.spec.warehouse.marts_schema)}.{quote_ident(target)}"
        )
        gate, name = "marts", target
    try:
        expectations = propose(con, "profiled")
        row = con.execute("SELECT count(*) FROM profiled").fetchone()
    finally:
        con.close()
    path = project.expectations_dir / "suites" / gate / f"{name}.yml"
    if path.exists() and not force:
        raise SuiteError(f"{path} exists: edit it, or pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(suite_yaml(name, target, expectations, int(row[0]) if row else 0))
    return path, len(expectations)


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
    tables = {name: [("", schema, name)] for name in mart_tables(project)}
    return run_gate("marts", suites, project.build_db, tables, _gx_config(project),
                    docs_dir=project.warehouse_dir / "data_docs" / "marts")  # fmt: skip
