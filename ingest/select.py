"""Which tables an ingest run lands: every declared one, or those `--select`ed, with
database `include` globs expanded."""

from __future__ import annotations

import contextlib
from pathlib import Path

import duckdb

from ingest.config import DATABASE_KINDS, PUSHED_KINDS, SourceConfig, TableConfig
from ingest.errors import IngestError
from ingest.report import TableReport, with_runbook
from ingest.sources.database import expand_tables
from lake import Lake


def resolve_tables(
    lake: Lake, src: SourceConfig, base_dir: Path, con: duckdb.DuckDBPyConnection | None = None
) -> list[TableConfig]:
    """The tables of a source; database `include` globs are expanded here (on `con`, or
    a connection of its own)."""
    if src.kind not in DATABASE_KINDS:
        return list(src.tables)
    if con is not None:
        return expand_tables(con, src, base_dir)
    with contextlib.closing(lake.connect()) as own:
        return expand_tables(own, src, base_dir)


def select_tables(
    lake: Lake,
    sources: list[SourceConfig],
    base_dir: Path,
    only: list[str] | None,
    con: duckdb.DuckDBPyConnection,
) -> tuple[list[tuple[SourceConfig, TableConfig]], list[TableReport]]:
    """`only` holds `source` or `source.table` names. Sources that cannot even list their
    tables are reported as failed; the others go on."""
    if only:
        known = {s.name for s in sources} | {
            f"{s.name}.{t.name}" for s in sources for t in s.tables
        }
        db_sources = {s.name for s in sources if s.kind in DATABASE_KINDS}
        unknown = sorted(n for n in set(only) - known if n.split(".")[0] not in db_sources)
        if unknown:
            raise IngestError(
                unknown[0].split(".")[0], unknown[0], f"not declared in lakehouse.yml: {unknown}"
            )
    chosen, failed = [], []
    for src in sources:
        if only and src.name not in only and not any(o.startswith(f"{src.name}.") for o in only):
            continue
        if src.kind in PUSHED_KINDS:  # its data arrives through `lakehouse collect`
            if only:
                raise IngestError(src.name, "", f"a {src.kind} source sends its data: "
                                  "`lakehouse collect` lands it as it arrives")  # fmt: skip
            continue
        try:
            tables = resolve_tables(lake, src, base_dir, con)
        except IngestError as exc:
            failed.append(TableReport(src.name, exc.table, error=with_runbook(src, exc)))
            continue
        for tbl in tables:
            if not only or src.name in only or f"{src.name}.{tbl.name}" in only:
                chosen.append((src, tbl))
    return chosen, failed
