"""The one place that makes GX's SQL datasource work on DuckDB (GX issue #11579).

GX opens a new SQLAlchemy connection per query for most dialects and closes it after;
duckdb-engine then rolls back and the result is gone, so every expectation fails with
`list index out of range`. GX already keeps one connection open for dialects that need
it (sqlite, mssql, ...): `_PERSISTED_CONNECTION_DIALECTS`. Adding duckdb there fixes it,
and validations run as SQL inside DuckDB. `tests/integration/test_gx_duckdb.py` fails
when an upgrade of GX makes this unnecessary (the defect is gone) or breaks it.
"""

from __future__ import annotations

from typing import Any

import great_expectations.execution_engine.sqlalchemy_execution_engine as _engine


class _DuckDBDialect(str):
    """Stands in for a `GXSqlDialect` member (GX has none for DuckDB): compares equal to
    the dialect name and has the `.value` GX reads."""

    value = "duckdb"


DUCKDB = _DuckDBDialect("duckdb")


def is_applied() -> bool:
    return DUCKDB in _engine._PERSISTED_CONNECTION_DIALECTS


def apply() -> None:
    """Idempotent; called before any GX validation on DuckDB."""
    if not is_applied():
        _engine._PERSISTED_CONNECTION_DIALECTS = (  # type: ignore[assignment]
            *_engine._PERSISTED_CONNECTION_DIALECTS,
            DUCKDB,
        )


def revert() -> None:
    """For the test that checks whether the workaround is still needed."""
    _engine._PERSISTED_CONNECTION_DIALECTS = tuple(  # type: ignore[assignment]
        d for d in _engine._PERSISTED_CONNECTION_DIALECTS if d is not DUCKDB
    )


def close(datasource: Any) -> None:
    """Close the persisted connection and the engine of a GX SQL datasource."""
    execution_engine = getattr(datasource, "_execution_engine", None)
    if execution_engine is not None:
        execution_engine.close()
        execution_engine.engine.dispose()
        datasource._execution_engine = None
    engine = getattr(datasource, "_engine", None)  # the one GX made for test_connection
    if engine is not None:
        engine.dispose()
        datasource._engine = None


def engine_kwargs(config: dict[str, Any], read_only: bool = False) -> dict[str, Any]:
    """create_engine kwargs for a DuckDB file: connect-time config (extensions, S3)."""
    return {"connect_args": {"read_only": read_only, "config": config}}


_INIT: dict[str, list[str]] = {}
_listening = False


def run_on_connect(database: str, statements: list[str]) -> None:
    """Run `statements` (ATTACH the lake, say) on every connection GX opens to the DuckDB
    file `database`, so that views there can read tables of another catalog."""
    global _listening
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    _INIT[str(database)] = list(statements)
    if _listening:
        return

    @event.listens_for(Engine, "connect")
    def _init(dbapi_connection: Any, _record: Any) -> None:
        # every engine's connections come here: a statement on another database (a BI
        # inspector's PostgreSQL, say) would fail and abort its first transaction
        if not type(dbapi_connection).__module__.startswith("duckdb"):
            return
        try:
            row = dbapi_connection.execute(
                "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
            ).fetchone()
        except Exception:  # not a DuckDB connection
            return
        for sql in _INIT.get(str(row[0]) if row else "", []):
            dbapi_connection.execute(sql)

    _listening = True


def forget(database: str) -> None:
    _INIT.pop(str(database), None)
