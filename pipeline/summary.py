"""What a person reads after a run and in `lakehouse status`."""

from __future__ import annotations

import click

from lake import TableState
from pipeline.config import Project
from pipeline.monitor import table_totals
from pipeline.run import RunRecord, last_runs


def print_summary(project: Project, record: RunRecord) -> None:
    click.echo(f"\nrun {record.run_id}: {record.status}  (lake: {project.lake.settings.url})")
    for line in record.skipped:
        click.echo(f"  SKIPPED {line}")
    for line in record.quarantined:
        click.echo(f"  QUARANTINED {line}")
    for stage in record.stages:
        click.echo(f"  {stage.name:<12} {stage.status:<7} {stage.seconds:>7.1f}s")
    if record.nothing_new_since:
        click.echo(f"  nothing new since run {record.nothing_new_since}: its published marts "
                   "are current (build, mart gate and publish skipped)")  # fmt: skip
    click.echo("\nrows landed per raw table (this run / total):")
    ingest = record.stage("ingest")
    new = ingest.details.get("tables", {}) if ingest else {}
    # measured by the monitor after the run; read now if it could not
    totals = record.monitor.get("tables") or table_totals(project.lake.states())
    for name, total in sorted(totals.items()):
        this_run = new.get(name, {}).get("rows", 0)
        q = f"  ({total['quarantined']:,} quarantined)" if total["quarantined"] else ""
        click.echo(f"  {name:<28} {this_run:>12,} / {total['rows']:>12,}{q}")
    build = record.stage("build")
    if build:
        click.echo(
            f"\nmodels built: {build.details.get('models')}, "
            f"dbt tests passed: {build.details.get('tests_passed')}"
        )
    for gate in ("check_raw", "check_marts"):
        g = record.stage(gate)
        if g:
            click.echo(
                f"gate {gate[6:]:<5}: {g.details.get('passed')}/"
                f"{g.details.get('expectations')} expectations passed"
                + (f", {len(g.details['warnings'])} warnings" if g.details.get("warnings") else "")
            )
            if g.details.get("data_docs"):
                click.echo(f"  Data Docs: {g.details['data_docs']}")
    example = example_query(project, record)
    if example:
        click.echo(
            f"\nquery the marts:\n"
            f'  lakehouse query "{example}"\n'
            f"or from DuckDB itself (the published marts, read-only):\n"
            f"  {analyst_sql(project)}"
        )


def example_query(project: Project, record: RunRecord) -> str | None:
    """A query on this project's own marts: its first report chart's, else the first
    mart this run (or the run it found current) published."""
    if project.spec.report.charts:
        return " ".join(project.spec.report.charts[0].sql.split())
    publish = record.stage("publish")
    marts = sorted((publish.details.get("marts") if publish else None) or [])
    if not marts and record.nothing_new_since:
        from pipeline.serve import current

        published = current(project)
        marts = sorted(published.marts) if published else []
    return f"select * from {marts[0]} limit 10" if marts else None


def analyst_sql(project: Project) -> str:
    """The line an analyst pastes into DuckDB to read the published marts."""
    return (
        f"ATTACH '{project.lake.settings.ducklake_uri}' AS lake (READ_ONLY); "
        "USE lake.marts; SHOW TABLES;"
    )


def print_sources(project: Project) -> None:
    """Every declared source and table (database globs expanded), with its lake state."""
    from ingest.select import resolve_tables

    for source in project.spec.sources:
        click.echo(f"{source.name} ({source.kind})")
        try:
            tables = resolve_tables(project.lake, source, project.base_dir)
        except Exception as exc:
            click.echo(f"  cannot list tables: {exc}")
            continue
        states = {(s.source, s.table): s for s in project.lake.states()}
        for table in tables:
            state = states.get((source.name, table.name)) or TableState(source.name, table.name)
            last = state.last_batch
            where = (f"topic {table.topic}" if table.topic
                     else f"POST /v1/{source.name}/{table.name}" if source.kind == "events"
                     else table.path or table.table or table.name)  # fmt: skip
            click.echo(
                f"  {table.name:<22} {where}\n"
                f"  {'':<22} batches {len(state.batches)}, rows {state.rows:,}, "
                f"quarantined {state.quarantined:,}, "
                f"last batch {last.committed_at if last else '-'}"
                + (f", watermark {state.watermark}" if state.watermark else "")
            )


def _duration(run: dict) -> str:
    from datetime import datetime

    if not run.get("finished_at"):
        return "-"
    took = datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["started_at"])
    return f"{took.total_seconds():.0f}s"


def status_json(project: Project) -> dict:
    """`lakehouse status --json`: the tables, the latest runs (as recorded) and the
    published sets."""
    from dataclasses import asdict

    from pipeline.serve import history

    tables = [
        {"table": f"{s.source}.{s.table}", "batches": len(s.batches), "rows": s.rows,
         "quarantined": s.quarantined, "watermark": s.watermark,
         "last_batch_at": s.last_batch.committed_at if s.last_batch else None}
        for s in project.lake.states()
    ]  # fmt: skip
    published = [{**asdict(p), "published_at": str(p.published_at)} for p in history(project)]
    return {"lake": project.lake.settings.url, "tables": tables, "runs": last_runs(project),
            "published": published, "cdc_slots": _slots(project)}  # fmt: skip


def _slots(project: Project) -> list[dict]:
    """CDC sources' replication slots and their lag (psycopg: only when there are some)."""
    if not any(t.reads_log(s) for s in project.spec.sources for t in s.tables):
        return []
    from ingest.cdc.run import slot_report

    return slot_report(project.spec.sources, project.base_dir)


def print_status(project: Project) -> None:
    click.echo(f"lake: {project.lake.settings.url}")
    states = project.lake.states()
    if not states:
        click.echo("no raw tables yet: run `lakehouse ingest`")
    for s in states:
        last = s.last_batch
        when = last.committed_at if last else "-"
        failed = sum(b.gate == "failed" for b in s.batches)
        held = sum(not b.in_raw_zone for b in s.batches)
        pending = f"  {failed} batch(es) FAILED the raw gate" if failed else ""
        pending += f"  {held} batch(es) in quarantine" if held else ""
        name = f"{s.source}.{s.table}"
        click.echo(
            f"  {name:<28} {len(s.batches):>4} batches {s.rows:>12,} rows "
            f"{s.quarantined:>8,} quarantined  last {when}"
            + (f"  watermark {s.watermark}" if s.watermark else "")
            + pending
        )
    slots = _slots(project)
    if slots:
        click.echo("CDC slots:")
    for slot in slots:
        where = f"  {slot['source']:<20} slot {slot['slot']:<28}"
        if slot.get("error"):
            click.echo(f"{where} {slot['error']}")
        else:
            behind = slot["lag_bytes"] / 2**20
            alarm = "  LAGGING: run `lakehouse cdc` (see README, CDC)" if slot["lagging"] else ""
            click.echo(f"{where} confirmed {slot['confirmed']}  {behind:,.1f} MB behind{alarm}")
    runs = last_runs(project)
    if runs:
        click.echo("latest runs:")
    for r in runs:
        err = f"  {r['error'][:160]}" if r.get("error") else ""
        noop = "  nothing new" if r.get("nothing_new_since") else ""
        click.echo(f"  {r['run_id']}  {r['status']:<11} started {r['started_at']}  "
                   f"{_duration(r):>6}{noop}{err}")  # fmt: skip
    monitored = (runs[-1].get("monitor") or {}) if runs else {}
    for name, f in sorted((monitored.get("freshness") or {}).items()):
        if f["status"] != "pass":
            click.echo(f"  STALE ({f['status']}) {name}: newest data {f['newest'] or 'none'}")
    for key in monitored.get("firing") or []:
        if not key.startswith("stale:"):
            click.echo(f"  ALERT {key}")
    from pipeline.serve import history, published_stack

    published = history(project)
    if not published:
        click.echo("published marts: none yet (`lakehouse run` or `lakehouse publish`)")
        return
    click.echo("published mart sets (latest last; `lakehouse query --at RUN_ID` reads one):")
    for p in published[-5:]:
        how = (
            f"rollback of {p.rollback_of}"
            if p.rollback_of is not None
            else ("FORCED past the mart gate" if p.forced else "gated")
        )
        click.echo(f"  {p.published_at:%Y-%m-%d %H:%M:%S}  run {p.run_id or '-':<24} "
                   f"snapshot {p.build_snapshot:<6} {len(p.marts)} marts  {how}")  # fmt: skip
    in_place = published_stack(published)[-1]
    click.echo(f"in place: run {in_place.run_id or '-'} (snapshot {in_place.build_snapshot})")
    click.echo(f"open them from DuckDB: {analyst_sql(project)}")
