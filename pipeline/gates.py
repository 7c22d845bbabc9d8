"""Where the gates meet the lake and the warehouse: which data each gate validates, and
what happens to data that fails."""

from __future__ import annotations

import uuid
from collections import defaultdict
from pathlib import Path

import duckdb

from expectations import GateResult, load_suites, run_gate
from lake import (
    LINEAGE_COLUMNS,
    BatchRecord,
    TableState,
    all_states,
    load_state,
    quarantine_batch,
    record_gate,
)
from lake.duck import attach_sql, connection_config, quote_ident, quote_str
from lake.failpoints import failpoint
from lake.layout import BUILD
from lake.publish import built_marts, changes_since, current_snapshot, published_snapshots
from pipeline.config import Project

Check = tuple[str, str, str | None, list[str] | None]
"""(label, relation, load_id to filter on or None, columns to show or None)"""


def _batch_columns(record: BatchRecord) -> list[str] | None:
    if not record.columns:
        return None
    return [c for c, _ in record.columns] + list(LINEAGE_COLUMNS)


def _gx_config(project: Project) -> dict:
    config: dict = dict(connection_config())
    if project.lake.settings.s3 is not None:
        config.update(project.lake.settings.s3.duckdb_config())
    return config


def primary_key(project: Project, source: str, table: str) -> list[str]:
    for src in project.spec.sources:
        if src.name == source:
            for tbl in src.tables:
                if tbl.name == table:
                    return list(tbl.primary_key)
    return []


def _lake_views(
    con: duckdb.DuckDBPyConnection,
    states: list[TableState],
    batches: dict[str, tuple[str, str | None, list[str] | None]],
    named: dict[str, str] | None = None,
) -> None:
    """What a gate reads, as views in its own DuckDB file over the lake (attached as of
    one snapshot): each batch to check as `<source>__<table>__<n>`, every raw table as
    `<source>__<table>` for cross-table expectations, and `lakehouse_batches`."""
    con.execute(
        "CREATE TABLE lakehouse_batches (source VARCHAR, table_name VARCHAR, load_id VARCHAR, "
        "rows BIGINT, committed_at TIMESTAMPTZ, gate VARCHAR)"
    )
    for s in states:
        for b in s.batches:
            con.execute("INSERT INTO lakehouse_batches VALUES (?, ?, ?, ?, ?, ?)",
                        [s.source, s.table, b.load_id, b.landed_rows, b.committed_at or None,
                         b.gate])  # fmt: skip
        if any(b.in_raw_zone for b in s.batches):
            con.execute(
                f"CREATE VIEW main.{quote_ident(f'{s.source}__{s.table}')} AS "
                f"SELECT * FROM lake.{quote_ident(s.source)}.{quote_ident(s.table)}"
            )
    for view, relation in (named or {}).items():  # what cross-table expectations name
        con.execute(f"CREATE VIEW main.{quote_ident(view)} AS SELECT * FROM {relation}")
    for view, (relation, load_id, columns) in batches.items():
        # a batch's own columns, not the table's (which has every batch's)
        select = ", ".join(quote_ident(c) for c in columns) if columns else "*"
        con.execute(
            f"CREATE VIEW main.{quote_ident(view)} AS SELECT {select} FROM {relation}"
            + (f" WHERE _load_id = {quote_str(load_id)}" if load_id else "")
        )


def gate_lake_batches(
    project: Project, gate: str, checks: dict[str, list[Check]],
    con: duckdb.DuckDBPyConnection, states: list[TableState], docs: bool = True,
    snapshot: int | None = None, named: dict[str, str] | None = None,
) -> GateResult:  # fmt: skip
    """Run the `gate` suites on lake relations: `checks` is target -> [(label, relation,
    load_id or None, columns or None)], read as of `snapshot` (default: now). GX reads
    views in a throwaway DuckDB file of this run only."""
    if not any(checks.values()):
        return GateResult(gate, [])  # nothing to check: no GX (7.5 s to import), no docs
    suites = load_suites(project.expectations_dir, "marts" if gate == "marts" else "raw")
    project.warehouse_dir.mkdir(parents=True, exist_ok=True)
    gate_db = project.warehouse_dir / f".gate_{gate}.{uuid.uuid4().hex[:12]}.duckdb"
    if snapshot is None:
        snapshot = current_snapshot(con)
    attach = attach_sql(project.lake.settings, read_only=True, snapshot=snapshot)
    init = [project.lake.settings.s3.duckdb_secret_sql()] if project.lake.settings.s3 else []
    tables: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    views: dict[str, tuple[str, str | None, list[str] | None]] = {}
    for target, items in sorted(checks.items()):
        for n, (label, relation, load_id, columns) in enumerate(items):
            # GX reflects columns without the schema on DuckDB: keep views in `main`
            view = f"{target.replace('.', '__')}__{n}"
            views[view] = (relation, load_id, columns)
            tables[target].append((label, "main", view))
    gcon = duckdb.connect(str(gate_db), config=connection_config())
    try:
        for sql in [*init, attach]:
            gcon.execute(sql)
        _lake_views(gcon, states, views, named)
    finally:
        gcon.close()
    try:
        return run_gate(gate, suites, gate_db, dict(tables), _gx_config(project),
                        docs_dir=project.warehouse_dir / "data_docs" / gate if docs else None,
                        init_sql=[*init, attach])  # fmt: skip
    finally:
        gate_db.unlink(missing_ok=True)
        Path(str(gate_db) + ".wal").unlink(missing_ok=True)


def check_raw(
    project: Project,
    everything: bool = False,
    run_id: str | None = None,
    tables: set[str] | None = None,
) -> GateResult:
    """Validate each raw batch that has not passed the gate yet, on its own (the cost grows
    with the new data, not the lake). A batch that fails a critical expectation leaves the
    raw table in one transaction (`lake.quarantine_batch`), so staging never reads it and
    its table's watermark goes back to where it started; the others pass. `tables`: only
    these (`source.table`)."""
    suites = load_suites(project.expectations_dir, "raw", validate=False)  # (targets only)
    wanted = {s.target for s in suites if tables is None or s.target in tables}
    con = project.lake.session()
    try:
        states = all_states(con)
        by_table: dict[tuple[str, str], list[BatchRecord]] = defaultdict(list)
        for s in states:  # in the raw zone, not checked yet (new ones); or all of them
            for b in s.batches:
                if b.in_raw_zone and (everything or b.gate != "passed"):
                    by_table[(s.source, s.table)].append(b)
        checks: dict[str, list[Check]] = {
            f"{src}.{tbl}": [(r.load_id, f"lake.{quote_ident(src)}.{quote_ident(tbl)}", r.load_id,
                              _batch_columns(r)) for r in records]
            for (src, tbl), records in by_table.items() if f"{src}.{tbl}" in wanted
        }  # fmt: skip
        result = gate_lake_batches(project, "raw", checks, con, states)
        failed: dict[tuple[str, str], list[str]] = defaultdict(list)
        for r in result.blocking:
            failed[(r.target, r.batch)].append(r.expectation)
        verdicts = [
            (record, (f"{src}.{tbl}", record.load_id) not in failed)
            for (src, tbl), records in by_table.items() if f"{src}.{tbl}" in wanted
            for record in records
        ]  # fmt: skip
        record_gate(con, verdicts, run_id)
        failpoint("raw_gate_before_quarantine")
        for record, passed in verdicts:
            if passed:
                continue
            reasons = failed[(f"{record.source}.{record.table}", record.load_id)]
            with project.lake.table_lock(record.source, record.table):
                # the table as it is now: an ingest may have landed batches meanwhile
                state = load_state(con, record.source, record.table)
                keys = primary_key(project, record.source, record.table)
                reason = "failed the raw gate: " + "; ".join(reasons)
                quarantine_batch(con, state, record.load_id, reason, keys, run_id)
        return result
    finally:
        con.close()


def suggest_suite(
    project: Project, target: str, force: bool = False, write: bool = True
) -> tuple[Path, int, str]:
    """Profile a raw table (`source.table`) or a mart and write a starting suite for it
    (path, expectations, its YAML). An existing suite is found before anything is read;
    `write=False` only returns the YAML."""
    from expectations.errors import SuiteError
    from expectations.suggest import propose, suite_yaml

    gate = "raw" if "." in target else "marts"
    name = f"raw__{target.replace('.', '__', 1)}" if gate == "raw" else target
    folder = project.expectations_dir / "suites" / gate
    existing = [folder / f"{name}{ext}" for ext in (".yml", ".yaml", ".json")]
    found = next((p for p in existing if p.exists()), None)
    if found is not None and write and not force:
        raise SuiteError(f"{found} exists: edit it, or pass --force to replace it "
                         "(--print shows a suggestion without writing)")  # fmt: skip
    if "." in target:
        source, table = target.split(".", 1)
        con = project.lake.connect()
        exists = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'lake' "
            "AND schema_name = ? AND table_name = ?",
            [source, table],
        ).fetchone()
        if not exists or not exists[0]:
            con.close()
            raise SuiteError(f"{target}: no such raw table in the lake: run `lakehouse ingest`")
        con.execute(
            f"CREATE TEMP VIEW profiled AS SELECT * FROM "
            f"lake.{quote_ident(source)}.{quote_ident(table)}"
        )
        gate, name = "raw", f"raw__{source}__{table}"
    else:
        con = project.lake.connect(lake_read_only=True)
        if target not in built_marts(con, current_snapshot(con)):
            con.close()
            raise SuiteError(f"{target}: not a mart in the lake: run `lakehouse build`")
        con.execute(
            f"CREATE TEMP VIEW profiled AS SELECT * FROM "
            f"lake.{quote_ident(BUILD)}.{quote_ident(target)}"
        )
        gate, name = "marts", target
    try:
        expectations = propose(con, "profiled")
        row = con.execute("SELECT count(*) FROM profiled").fetchone()
    finally:
        con.close()
    path = folder / f"{name}.yml"
    text = suite_yaml(name, target, expectations, int(row[0]) if row else 0)
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path, len(expectations), text


def _rows_since(relation: str, snapshot: int | None) -> str:
    """A mart's rows written after `snapshot` (all of them for None)."""
    if snapshot is None:
        return relation
    return f"(SELECT * FROM {relation} WHERE snapshot_id > {snapshot})"


def check_marts(
    project: Project, snapshot: int, only: list[str] | None = None, changed_only: bool = False
) -> GateResult:
    """Validate the marts as built at `snapshot` (see `pipeline.serve.build_snapshot`):
    publish then publishes exactly what passed, whatever builds ran since. `only`: these
    marts (what `lakehouse stream` rebuilt). `changed_only` (a run): only what changed
    since the published set, which passed the gate when it was published: a mart the
    builds since left alone is not read, and of a mart they added rows to, only the rows
    newer than its published snapshot (cross-table expectations still read whole marts)."""
    con = project.lake.connect(lake_read_only=True)
    try:
        marts = {m: f"lake.{quote_ident(BUILD)}.{quote_ident(m)}"
                 for m in built_marts(con, snapshot) if only is None or m in only}  # fmt: skip
        checks: dict[str, list[Check]] = {m: [("", r, None, None)] for m, r in marts.items()}
        if changed_only:
            changed = changes_since(con, published_snapshots(con), snapshot)
            checks = {m: [("", _rows_since(r, changed[m]), None, None)]
                      for m, r in marts.items() if m in changed}  # fmt: skip
        return gate_lake_batches(project, "marts", checks, con, [], snapshot=snapshot,
                                 named=marts)  # fmt: skip
    finally:
        con.close()
