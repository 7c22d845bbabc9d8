"""A stream's declared schema, and the check every event passes before it is accepted."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.config import TableConfig

TYPES = ("VARCHAR", "BIGINT", "INTEGER", "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMPTZ", "JSON")
_INT_RANGE = {"BIGINT": 2**63, "INTEGER": 2**31}


def check_schema(table: TableConfig) -> None:
    """A declared stream's schema makes sense (raises ValueError naming the problem)."""
    if not table.columns:
        raise ValueError(f"table {table.name}: declare its `columns` (field: type)")
    for name, kind in table.columns.items():
        if kind.upper() not in TYPES:
            raise ValueError(
                f"table {table.name}: column {name}: type {kind!r} is not one of {', '.join(TYPES)}"
            )
        if name.startswith("_"):
            raise ValueError(
                f"table {table.name}: column {name}: names starting with _ are "
                "the lake's own (lineage)"
            )
    for key in (*table.required, *table.primary_key):
        if key not in table.columns:
            raise ValueError(f"table {table.name}: {key} is not one of its columns")


class Validator:
    """Checks one stream's events; `check` returns why an event is refused, or None."""

    def __init__(self, table: TableConfig) -> None:
        self.columns = {name: kind.upper() for name, kind in table.columns.items()}
        self.required = list(dict.fromkeys([*table.required, *table.primary_key]))

    def check(self, event: Any) -> str | None:
        if not isinstance(event, dict):
            return f"an event is a JSON object, not {type(event).__name__}"
        for name in self.required:
            if event.get(name) is None:
                return f"{name} is required"
        for name, value in event.items():
            kind = self.columns.get(name)
            if kind is None:
                return (
                    f"{name} is not a field of this stream (its fields: {', '.join(self.columns)})"
                )
            if value is not None and not _fits(kind, value):
                shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
                return f"{name}: {shown} is not a valid {kind}"
        return None


def _fits(kind: str, value: Any) -> bool:
    if kind == "VARCHAR":
        return isinstance(value, str)
    if kind in _INT_RANGE:
        bound = _INT_RANGE[kind]
        return isinstance(value, int) and not isinstance(value, bool) and -bound <= value < bound
    if kind == "DOUBLE":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "BOOLEAN":
        return isinstance(value, bool)
    if kind == "JSON":
        return True
    if not isinstance(value, str):
        return False
    try:
        if kind == "DATE":
            date.fromisoformat(value)
            return True
        # TIMESTAMPTZ: an instant, so its UTC offset must be given ("Z" or "+02:00")
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False
