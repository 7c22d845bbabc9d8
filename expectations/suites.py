"""Suites declared in YAML, in GX's own suite shape, turned into GX suites.

    expectations/suites/<gate>/<name>.yml
    ---
    name: raw__shop__orders
    target: shop.orders          # raw gate: <source>.<table>; marts gate: <mart model>
    expectations:
      - type: expect_column_values_to_not_be_null   # any GX expectation, by its type
        kwargs: {column: order_id}                  # its arguments, as in GX's JSON
        severity: critical                          # critical blocks the run (default);
                                                    # warning is reported and passes

A data engineer edits YAML, not Python; the fields are GX's (type, kwargs, meta,
severity), so a GX user reads it as the JSON suite it becomes. A few expectations GX
cannot run on DuckDB, and lakehouse's referential / freshness / volume shorthands, become
GX's `UnexpectedRowsExpectation` SQL: see `expectations/duckdb_sql.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from expectations.duckdb_sql import translate
from expectations.errors import SuiteError

GATES = ("raw", "marts")
LABEL = "lakehouse_label"  # the expectation as the suite wrote it, kept in GX's meta
SEVERITIES = ("critical", "warning", "info")


@dataclass(frozen=True)
class ExpectationSpec:
    type: str
    kwargs: dict[str, Any]
    severity: str = "critical"
    meta: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.type}({args})"


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    gate: str
    target: str
    expectations: list[ExpectationSpec]
    path: Path

    def to_gx(self) -> Any:
        import great_expectations as gx
        from great_expectations.expectations.expectation_configuration import (
            ExpectationConfiguration,
        )

        expectations = []
        for spec in self.expectations:
            type_, kwargs = translate(spec.type, dict(spec.kwargs), self.target)
            config = ExpectationConfiguration(
                type=type_,
                kwargs=kwargs,
                meta={**spec.meta, LABEL: spec.label()},
                severity=spec.severity,  # type: ignore[arg-type]
            )
            try:
                expectations.append(config.to_domain_obj())
            except Exception as exc:
                raise SuiteError(f"{self.path}: {spec.label()}: {exc}") from None
        # the whole list at once: GX's add-one-by-one upserts by domain, which would keep a
        # single SQL (unexpected rows) expectation of several
        return gx.ExpectationSuite(name=self.name, expectations=expectations)


def _from_gx_json(path: Path, gate: str) -> dict[str, Any]:
    """A suite GX itself wrote (`suite.to_json_dict()`, GX 1.x; or 0.x's
    `expectation_suite_name` / `expectation_type`) in our shape. Its target is
    `meta.target`, or read from its name: `raw__<source>__<table>`, or the mart."""
    import json

    try:
        body = json.loads(path.read_text())
    except ValueError as exc:
        raise SuiteError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("expectations"), list):
        raise SuiteError(f"{path}: not a GX expectation suite (no 'expectations' list)")
    name = body.get("name") or body.get("expectation_suite_name")
    if not name:
        raise SuiteError(f"{path}: a GX suite needs its 'name'")
    target = (body.get("meta") or {}).get("target")
    parts = str(name).split("__")
    if not target and gate == "raw" and len(parts) == 3 and parts[0] == "raw":
        target = f"{parts[1]}.{parts[2]}"
    if not target and gate == "marts":
        target = name
    if not target:
        raise SuiteError(
            f"{path}: GX suite {name!r}: which table does it gate? name it "
            "raw__<source>__<table>, or set meta.target to <source>.<table>"
        )
    expectations = []
    for i, item in enumerate(body["expectations"]):
        if not isinstance(item, dict):
            raise SuiteError(f"{path}: expectations[{i}]: expected an object")
        kind = item.get("type") or item.get("expectation_type")
        expectations.append(
            {
                "type": kind,
                "kwargs": item.get("kwargs") or {},
                "severity": item.get("severity") or "critical",
                "meta": dict(item.get("meta") or {}),
            }
        )
    return {"name": name, "target": target, "expectations": expectations}


def _load(path: Path, gate: str) -> SuiteSpec:
    if path.suffix == ".json":
        body = _from_gx_json(path, gate)
    else:
        try:
            body = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SuiteError(f"{path}: not valid YAML: {exc}") from None
    for key in ("name", "target", "expectations"):
        if key not in body:
            raise SuiteError(f"{path}: missing key {key!r}")
    unknown = set(body) - {"name", "target", "expectations", "meta"}
    if unknown:
        raise SuiteError(f"{path}: unknown key(s) {sorted(unknown)}")
    specs = []
    for i, item in enumerate(body["expectations"]):
        where = f"{path}: expectations[{i}]"
        if not isinstance(item, dict) or "type" not in item:
            raise SuiteError(f"{where}: expected a mapping with 'type' and 'kwargs'")
        extra = set(item) - {"type", "kwargs", "severity", "meta"}
        if extra:
            raise SuiteError(f"{where}: unknown key(s) {sorted(extra)}")
        severity = item.get("severity", "critical")
        if severity not in SEVERITIES:
            raise SuiteError(f"{where}: severity must be one of {SEVERITIES}, got {severity!r}")
        specs.append(
            ExpectationSpec(
                item["type"], item.get("kwargs") or {}, severity, item.get("meta") or {}
            )
        )
    return SuiteSpec(body["name"], gate, str(body["target"]), specs, path)


def load_suites(root: Path, gate: str, validate: bool = True) -> list[SuiteSpec]:
    """The suites of a gate. `validate`: check every expectation type and its kwargs with
    GX now (importing GX: 7.5 s); a gate with nothing to check passes False."""
    if gate not in GATES:
        raise SuiteError(f"unknown gate {gate!r}: expected one of {GATES}")
    folder = root / "suites" / gate
    # ours in YAML, or GX's own JSON suites
    files = sorted(p for p in folder.glob("*") if p.suffix in (".yml", ".yaml", ".json"))
    suites = [_load(p, gate) for p in files]
    names = [s.name for s in suites]
    if len(set(names)) != len(names):
        raise SuiteError(f"{folder}: suite names must be unique")
    for suite in suites if validate else []:
        suite.to_gx()  # validate every expectation type and its kwargs now
    return suites
