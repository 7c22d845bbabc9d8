"""Run a gate: GX checkpoints over DuckDB tables, validated as SQL inside DuckDB."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expectations.errors import GateFailed
from expectations.suites import LABEL, SuiteSpec

log = logging.getLogger("lakehouse.expectations")


@dataclass
class ExpectationResult:
    suite: str
    target: str
    expectation: str
    severity: str
    success: bool
    observed: Any = None
    sample: list[Any] = field(default_factory=list)
    error: str | None = None
    batch: str = ""
    """Which batch of the target it ran on (raw gate), or ''."""
    query: str | None = None
    """SQL expectations: the query that returns the offending rows."""

    def describe(self) -> str:
        where = f"{self.target} batch {self.batch}" if self.batch else self.target
        text = f"{where}: {self.expectation}"
        if self.error:
            return f"{text}: could not run: {self.error}"
        if self.observed is not None:
            text += f": observed {self.observed}"
        if self.sample:
            text += f", e.g. {self.sample[:5]}"
        return text


@dataclass
class GateResult:
    gate: str
    results: list[ExpectationResult]
    context: str = ""
    docs: Path | None = None
    """The Data Docs index of this run, when built."""

    @property
    def blocking(self) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success and r.severity == "critical"]

    @property
    def warnings(self) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success and r.severity != "critical"]

    @property
    def ok(self) -> bool:
        return not self.blocking

    def raise_for_failures(self) -> None:
        if self.blocking:
            raise GateFailed(self.gate, [r.describe() for r in self.blocking], self.context)


def _observed(result: dict[str, Any]) -> Any:
    if "observed_value" in result:
        return result["observed_value"]
    if "unexpected_count" in result:
        return f"{result['unexpected_count']} unexpected of {result.get('element_count')} rows"
    return None


def _exception_message(info: dict[str, Any]) -> str | None:
    """GX reports errors flat, or nested per metric; the first message, one line."""
    if "raised_exception" in info:
        infos = [info]
    else:
        infos = [v for v in info.values() if isinstance(v, dict)]
    for item in infos:
        if item.get("raised_exception"):
            message = str(item.get("exception_message") or "error").strip()
            return message.splitlines()[0]
    return None


def run_gate(
    gate: str,
    suites: list[SuiteSpec],
    database: Path,
    tables: dict[str, list[tuple[str, str, str]]],
    duckdb_config: dict[str, Any],
    read_only: bool = True,
    context: str = "",
    docs_dir: Path | None = None,
    init_sql: list[str] | None = None,
) -> GateResult:
    """Validate each suite on every table of its target in the DuckDB file `database`
    (`tables`: target -> [(batch label, schema, table)]), one GX checkpoint each; GX
    pushes every expectation down as SQL. With `docs_dir`, GX Data Docs of this run are
    built there, with every asset local."""
    import great_expectations as gx  # ~7.5 s: only where a gate runs
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    from expectations import docs_assets, docs_history, gx_duckdb

    gx_duckdb.apply()
    if init_sql:
        gx_duckdb.run_on_connect(str(database), init_sql)
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    if docs_dir is not None:  # results kept on disk: the Data Docs show the last runs
        config.stores[config.validation_results_store_name] = docs_history.store_config(docs_dir)
    ctx = gx.get_context(mode="ephemeral", project_config=config)
    rendered: list[Any] = []  # this run's suites and results: the pages to render
    pages: list[str] = []
    warned: list[str] = []  # result pages of validations that failed on warnings only
    if docs_dir is not None:
        ctx.add_data_docs_site("lakehouse", {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })  # fmt: skip
    datasource = ctx.data_sources.add_sql(  # type: ignore[call-arg]  # kwargs: not in the stub
        name=f"{gate}_duckdb",
        connection_string=f"duckdb:///{database}",
        kwargs=gx_duckdb.engine_kwargs(duckdb_config, read_only=read_only),
    )
    results: list[ExpectationResult] = []
    try:
        for suite in suites:
            if suite.target not in tables:
                continue
            gx_suite = ctx.suites.add(suite.to_gx())
            for i, (label, schema, table) in enumerate(tables[suite.target]):
                name = f"{suite.name}__{i}"
                asset = datasource.add_table_asset(name=name, table_name=table, schema_name=schema)
                validation = ctx.validation_definitions.add(
                    gx.ValidationDefinition(
                        name=name, data=asset.add_batch_definition_whole_table("whole"),
                        suite=gx_suite,
                    )
                )  # fmt: skip
                # fast path: pass/fail only; details (observed values, samples) are then
                # computed for the failures alone, usually none
                checkpoint = ctx.checkpoints.add(
                    gx.Checkpoint(name=f"{gate}__{name}", validation_definitions=[validation],
                                  result_format="BOOLEAN_ONLY")
                )  # fmt: skip
                outcome = checkpoint.run()
                found = _results(suite, label, outcome, f"{schema}.{table}")
                failed = {r.expectation for r in found if not r.success}
                only_warnings = bool(failed) and all(
                    r.severity != "critical" for r in found if not r.success
                )
                runs = list(outcome.run_results)
                if failed:
                    detail = SuiteSpec(f"{name}__failed", suite.gate, suite.target,
                                       [e for e in suite.expectations if e.label() in failed],
                                       suite.path)  # fmt: skip
                    again = ctx.checkpoints.add(gx.Checkpoint(
                        name=f"{gate}__{name}__failed", result_format="SUMMARY",
                        validation_definitions=[ctx.validation_definitions.add(
                            gx.ValidationDefinition(
                                name=f"{name}__failed", suite=ctx.suites.add(detail.to_gx()),
                                data=asset.add_batch_definition_whole_table("again"),
                            )
                        )],
                    ))  # fmt: skip
                    detail_outcome = again.run()
                    runs += list(detail_outcome.run_results)
                    detailed = {
                        r.expectation: r
                        for r in _results(suite, label, detail_outcome, f"{schema}.{table}")
                    }
                    found = [detailed.get(r.expectation, r) for r in found]
                results += found
                rendered += runs
                pages += [docs_history.page(k) for k in runs]
                warned += [docs_history.page(k) for k in runs] if only_warnings else []
        if docs_dir is not None:
            from great_expectations.data_context.types.resource_identifiers import (
                ExpectationSuiteIdentifier,
            )

            suites_here = [ExpectationSuiteIdentifier(name=s.name) for s in ctx.suites.all()]
            ctx.build_data_docs(site_names=["lakehouse"],
                                resource_identifiers=[*suites_here, *rendered])  # fmt: skip
            docs_assets.localize(docs_dir)
            docs_history.mark_warnings(docs_dir, docs_history.record_run(docs_dir, pages, warned))
    finally:
        # GX keeps its one DuckDB connection open (see gx_duckdb); close it so the
        # database file is free for the next writer or reader in this process.
        for ds in [datasource, *ctx.data_sources.all().values()]:
            gx_duckdb.close(ds)
    _sample_offending_rows(database, duckdb_config, results, init_sql or [])
    gx_duckdb.forget(str(database))
    gate_result = GateResult(gate, results, context)
    if docs_dir is not None:
        gate_result.docs = docs_dir / "index.html"
    for w in gate_result.warnings:
        log.warning("%s gate warning: %s", gate, w.describe())
    return gate_result


def _sample_offending_rows(
    database: Path, config: dict[str, Any], results: list[ExpectationResult], init_sql: list[str]
) -> None:
    """GX counts a SQL expectation's offending rows; show a few of them too."""
    failed = [r for r in results if r.query and not r.success and not r.error]
    if not failed:
        return
    import duckdb

    con = duckdb.connect(str(database), read_only=True, config=config)
    try:
        for sql in init_sql:
            con.execute(sql)
        for r in failed:
            cur = con.execute(f"SELECT * FROM ({r.query}) LIMIT 3")
            names = [d[0] for d in cur.description or []]
            r.sample = [
                {k: v for k, v in zip(names, row, strict=True) if not k.startswith("_")}
                for row in cur.fetchall()
            ]
    except duckdb.Error as exc:
        log.debug("no sample of offending rows: %s", exc)
    finally:
        con.close()


def _results(suite: SuiteSpec, batch: str, outcome: Any, relation: str) -> list[ExpectationResult]:
    results = []
    for run_result in outcome.run_results.values():
        for r in run_result.results:
            cfg = r.expectation_config
            if cfg is None:
                continue
            label = (cfg.meta or {}).get(LABEL) or cfg.type
            error = _exception_message(r.exception_info or {})
            res = r.result or {}
            query = None
            if cfg.type == "unexpected_rows_expectation":
                query = str(cfg.kwargs["unexpected_rows_query"]).format(batch=relation)
                res = {**res, "observed_value": f"{res.get('observed_value')} offending rows"}
            results.append(
                ExpectationResult(
                    suite=suite.name,
                    target=suite.target,
                    expectation=label,
                    severity=str(getattr(cfg.severity, "value", cfg.severity)),
                    success=bool(r.success),
                    observed=_observed(res),
                    sample=list(res.get("partial_unexpected_list") or []),
                    error=error,
                    batch=batch,
                    query=query,
                )
            )
    return results
