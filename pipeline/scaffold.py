"""Your own project: `lakehouse init DIR` and `lakehouse dbt-sources`.

`init` writes a project that runs as it is: `lakehouse.yml` (one commented example per
source kind, and a CSV source per file group found under `data/`), a dbt project wired to
the lake (its profile, and lakehouse's own macros as a local dbt package), `expectations/`,
`.env.example`, `.gitignore` and a README.

`dbt-sources` writes, for each raw table of the lake, the dbt `sources:` YAML (with its
columns) and a staging model `stg_<source>__<table>` that keeps the latest version per
`primary_key:` (lakehouse's `staged` macro). Files that exist are left alone, unless
`force`.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from lake.duck import quote_ident
from pipeline.config import Project

TEMPLATES = Path(__file__).parent / "templates" / "init"
DBT_PACKAGE = Path(__file__).parent / "dbt_package"
"""lakehouse's macros, a local dbt package (`dbt_env` sets LAKEHOUSE_DBT_PACKAGE to it)."""
_PART = re.compile(r"[_-]?\d[\d_-]*$")  # orders_2026_01.csv, orders-3.csv: one table


def _name(text: str) -> str:
    name = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")
    return name if name and not name[0].isdigit() else f"t_{name}"


def csv_tables(folder: Path, base: Path) -> list[dict[str, str]]:
    """One table per group of CSV files under `folder` (`orders_2026_01.csv` and
    `orders_2026_02.csv` are both `orders`), paths relative to `base`."""
    groups: dict[tuple[Path, str], list[Path]] = {}
    for path in sorted(folder.rglob("*.csv")) if folder.is_dir() else []:
        stem = _PART.sub("", path.stem) or path.stem
        groups.setdefault((path.parent, stem), []).append(path)
    tables = []
    for (parent, stem), paths in sorted(groups.items()):
        rel = parent.relative_to(base)
        pattern = paths[0].name if len(paths) == 1 else f"{stem}*.csv"
        tables.append({"name": _name(stem), "path": str(rel / pattern)})
    return tables


def init_project(target: Path, name: str | None = None, force: bool = False) -> list[Path]:
    """Write a new project into `target` (which may already hold `data/*.csv`)."""
    target = target.resolve()
    target.mkdir(parents=True, exist_ok=True)
    if (target / "lakehouse.yml").exists() and not force:
        raise FileExistsError(f"{target / 'lakehouse.yml'} exists: pass --force to overwrite")
    project = _name(name or target.name)
    written: list[Path] = []
    for src in sorted(TEMPLATES.rglob("*")):
        if src.is_dir():
            continue
        rel = src.relative_to(TEMPLATES)
        dest = target / str(rel).replace("dot.", ".", 1)
        if dest.exists() and not force:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        text = src.read_text()
        if rel.name != "profiles.yml":  # (the example's own profile, verbatim: its Jinja stays)
            text = text.replace("{{project}}", project)
        if rel.name == "lakehouse.yml":
            text = text.replace("{{csv_sources}}", _csv_source(target))
        dest.write_text(text)
        written.append(dest)
    for folder in ("data", "expectations/suites/raw", "expectations/suites/marts",
                   "dbt/models/staging", "dbt/models/marts"):  # fmt: skip
        (target / folder).mkdir(parents=True, exist_ok=True)
    return written


def _csv_source(target: Path) -> str:
    tables = csv_tables(target / "data", target)
    if not tables:
        return (
            "  # your CSV files: put them under data/ and run `lakehouse init . --force`,\n"
            "  # or declare them here\n"
            "  - name: files\n    kind: csv\n    tables:\n"
            "      - {name: example, path: data/example*.csv}\n"
        )
    lines = ["  # found under data/ by `lakehouse init`; add `primary_key:` where rows have one",
             "  - name: files", "    kind: csv", "    tables:"]  # fmt: skip
    lines += [f"      - {{name: {t['name']}, path: {t['path']}}}" for t in tables]
    return "\n".join(lines) + "\n"


def _columns(project: Project) -> dict[tuple[str, str], list[tuple[str, str]]]:
    con = project.lake.connect(lake_read_only=True)
    try:
        rows = con.execute(
            "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = 'lake' AND NOT starts_with(schema_name, '_') "
            "AND schema_name <> 'marts' ORDER BY schema_name, table_name, column_index"
        ).fetchall()
    finally:
        con.close()
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, dtype in rows:
        out.setdefault((schema, table), []).append((column, dtype))
    return out


def _staging_sql(source: str, table: str, key: list[str], order_by: str | None) -> str:
    args = [repr(source), repr(table)]
    if key:
        args.append(f"primary_key={key!r}")
    if order_by:
        args.append(f"order_by={order_by!r}")
    dedup = (f"the latest version of each {', '.join(key)}" if key
             else "every row (no primary_key: declared in lakehouse.yml)")  # fmt: skip
    return (
        f"-- Written by `lakehouse dbt-sources`: {source}.{table} as landed, {dedup}.\n"
        "-- Rename and cast here; it is yours to edit (it is not written again).\n"
        f"{{{{ lakehouse.staged({', '.join(args)}) }}}}\n"
    )


def dbt_sources(project: Project, force: bool = False) -> list[Path]:
    """The sources YAML and a staging model per raw table of the lake."""
    declared = {(s.name, t.name): t for s in project.spec.sources for t in s.tables}
    models = project.dbt_project_dir / "models" / "staging"
    written: list[Path] = []
    by_source: dict[str, list[tuple[str, list[tuple[str, str]]]]] = {}
    for (source, table), cols in sorted(_columns(project).items()):
        by_source.setdefault(source, []).append((table, cols))
    for source, tables in by_source.items():
        folder = models / source
        folder.mkdir(parents=True, exist_ok=True)
        spec = {"version": 2, "sources": [{
            "name": source, "database": "lake",
            "description": f"Raw tables of the `{source}` source, as landed by lakehouse.",
            "config": {"loaded_at_field": "_ingested_at"},
            "tables": [{"name": t, "columns": [{"name": c, "data_type": d} for c, d in cols]}
                       for t, cols in tables],
        }]}  # fmt: skip
        path = folder / f"_{source}__sources.yml"
        if force or not path.exists():
            header = "# Written by `lakehouse dbt-sources` from the lake's raw tables.\n"
            path.write_text(header + yaml.safe_dump(spec, sort_keys=False))
            written.append(path)
        for table, _ in tables:
            decl = declared.get((source, table))
            keys = list(decl.primary_key) if decl is not None else []
            cursor = decl.cursor if decl is not None else None
            newest = "_ingested_at desc, _load_id desc"
            order = f"{quote_ident(cursor)} desc, {newest}" if cursor else None
            model = folder / f"stg_{source}__{table}.sql"
            if force or not model.exists():
                model.write_text(_staging_sql(source, table, keys, order))
                written.append(model)
    return written
