"""`lakehouse report`: one static HTML file people look at, every asset inline.

It shows the last runs (their stages and timings), the rows per table, the quality gates'
results and the tables' freshness over time, and the project's own charts, declared in
`lakehouse.yml` (`report.charts`: a query on the published marts and how to draw it).
Charts are Vega-Lite specs made with Altair; the Vega, Vega-Lite and vega-embed scripts
are inlined from vl-convert's bundle, so the file opens from disk with no network.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import altair as alt

    from pipeline.config import Project

log = logging.getLogger("lakehouse.report")

MAX_CHART_ROWS = 5000
"""A chart embeds its data: more rows than this is a query that should aggregate."""


class ChartSpec(BaseModel):
    """One chart of `report.charts`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    sql: str = Field(description="A query on the published marts (as `lakehouse query`).")
    mark: Literal["line", "bar", "area", "point"] = "line"
    x: str
    y: str
    color: str | None = Field(None, description="A column that splits the series.")
    x_type: Literal["temporal", "nominal", "ordinal", "quantitative"] = "temporal"
    description: str = ""


class ReportSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    runs: int = Field(30, ge=1, description="How many of the latest runs the report shows.")
    charts: list[ChartSpec] = Field(default_factory=list)


def _chart(
    rows: list[dict[str, Any]], mark: str, x: str, y: str, *, x_type: str = "nominal",
    color: str | None = None, title: str = "", stack: bool | None = None,
) -> alt.Chart:  # fmt: skip
    """`stack` (series of `color` on top of each other): by default for bars and areas
    only, as Vega-Lite does; stacked lines read as wrong values (a fraud rate of 95% drawn
    on top of 20 orders showed as 115)."""
    import altair as alt

    if stack is None:
        stack = mark in ("bar", "area")

    chart = alt.Chart(alt.Data(values=rows), title=title)
    marked = {"line": chart.mark_line(point=True), "bar": chart.mark_bar(),
              "area": chart.mark_area(), "point": chart.mark_point()}[mark]  # fmt: skip
    x_enc = alt.X(x, type=x_type, sort=None)  # type: ignore[arg-type]
    y_enc = alt.Y(y, type="quantitative", stack=stack or None)
    tips = [alt.Tooltip(x, type=x_type), alt.Tooltip(y, type="quantitative")]  # type: ignore[arg-type]
    tips += [alt.Tooltip(color, type="nominal")] if color else []
    enc: dict[str, Any] = {"x": x_enc, "y": y_enc, "tooltip": tips}
    if color:
        enc["color"] = alt.Color(color, type="nominal")
    return marked.encode(**enc).properties(width="container", height=220)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    try:
        return float(value)  # Decimal
    except (TypeError, ValueError):
        return str(value)


def project_charts(project: Project) -> list[tuple[ChartSpec, alt.Chart | None, str | None]]:
    """Each declared chart, drawn from the published marts, or the reason it could not be."""
    from pipeline.serve import connect_serving

    specs = project.spec.report.charts
    if not specs:
        return []
    out: list[tuple[ChartSpec, alt.Chart | None, str | None]] = []
    try:
        con = connect_serving(project)
    except Exception as exc:
        return [(s, None, f"the published marts cannot be read: {exc}") for s in specs]
    with contextlib.closing(con):
        for spec in specs:
            try:
                cur = con.execute(f"SELECT * FROM ({spec.sql}) LIMIT {MAX_CHART_ROWS + 1}")
                cols = [d[0] for d in cur.description or []]
                rows = [dict(zip(cols, map(_jsonable, r), strict=True)) for r in cur.fetchall()]
            except Exception as exc:
                out.append((spec, None, f"query failed: {str(exc).splitlines()[0]}"))
                continue
            if len(rows) > MAX_CHART_ROWS:
                out.append((spec, None, f"more than {MAX_CHART_ROWS:,} rows: aggregate in the "
                            "chart's SQL"))  # fmt: skip
                continue
            missing = [c for c in (spec.x, spec.y, spec.color) if c and c not in cols]
            if missing:
                out.append((spec, None, f"the query has no column {', '.join(missing)} "
                            f"(it has {', '.join(cols)})"))  # fmt: skip
                continue
            out.append((spec, _chart(rows, spec.mark, spec.x, spec.y, x_type=spec.x_type,
                                     color=spec.color), None))  # fmt: skip
    return out


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def run_charts(runs: list[dict[str, Any]]) -> dict[str, alt.Chart | None]:
    """The pipeline's own history: stage timings, gate results, freshness, rows."""
    stages, gates, fresh, rows = [], [], [], []
    for r in runs:
        run = r["run_id"]
        for s in r.get("stages", []):
            if s.get("status") != "skipped":
                stages.append({"run": run, "stage": s["name"], "seconds": s.get("seconds", 0)})
            if s["name"] in ("check_raw", "check_marts") and s.get("details"):
                d = s["details"]
                warned = len(d.get("warnings") or [])
                failed = len(d.get("failed") or [])
                passed = d.get("passed") or 0
                for outcome, n in (("passed", passed), ("warning", warned), ("failed", failed)):
                    gates.append({"run": run, "result": f"{s['name'][6:]} {outcome}", "count": n})
        monitor = r.get("monitor") or {}
        for table, f in (monitor.get("freshness") or {}).items():
            if f.get("age_s") is not None:
                fresh.append({"run": run, "table": table, "age_hours": f["age_s"] / 3600})
        for table, t in (monitor.get("tables") or {}).items():
            rows.append({"run": run, "table": table, "rows": t.get("rows", 0)})
    return {
        "Stage seconds per run": _chart(stages, "bar", "run", "seconds", color="stage")
        if stages else None,
        "Quality gate results per run": _chart(gates, "bar", "run", "count", color="result")
        if gates else None,
        "Freshness: age of the newest data (hours)": _chart(
            fresh, "line", "run", "age_hours", color="table", stack=False) if fresh else None,
        "Rows per raw table": _chart(rows, "line", "run", "rows", color="table", stack=False)
        if rows else None,
    }  # fmt: skip


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row)
        + "</tr>" for row in rows
    )  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _mart_rows(project: Project) -> list[list[Any]]:
    from pipeline.serve import connect_serving

    try:
        con = connect_serving(project)
    except Exception:
        return []
    with contextlib.closing(con):
        marts = [r[0] for r in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE database_name = 'lake' "
            "AND schema_name = 'marts' ORDER BY 1").fetchall()]  # fmt: skip
        return [[m, f"{con.execute(f'SELECT count(*) FROM {m}').fetchone()[0]:,}"]  # type: ignore[index]
                for m in marts]  # fmt: skip


STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.6rem} h2{margin-top:2.2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left} th{background:#f4f4f4}
.chart{width:100%;margin:1rem 0} .error{color:#a00} .muted{color:#777}
.status-failed{color:#a00;font-weight:600} .status-partial{color:#b60}
"""


def render(project: Project, runs_limit: int | None = None) -> str:
    import altair as alt
    import vl_convert as vlc

    from pipeline.run import last_runs

    limit = runs_limit or project.spec.report.runs
    runs = last_runs(project, limit=limit)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    parts = [f"<h1>{html.escape(project.spec.name)}: lakehouse report</h1>",
             f"<p class=muted>generated {now} · lake {html.escape(project.lake.settings.url)}"
             f" · the last {len(runs)} runs</p>"]  # fmt: skip
    specs: list[tuple[str, dict[str, Any]]] = []

    def chart_block(title: str, chart: alt.Chart | None, error: str | None = None,
                    note: str = "") -> str:  # fmt: skip
        cid = f"chart{len(specs)}"
        out = f"<h3>{html.escape(title)}</h3>"
        if note:
            out += f"<p class=muted>{html.escape(note)}</p>"
        if chart is None:
            return out + f"<p class=error>{html.escape(error or 'no data yet')}</p>"
        specs.append((cid, chart.to_dict()))
        return out + f'<div class=chart id="{cid}" data-title="{html.escape(title)}"></div>'

    drawn = project_charts(project)
    if drawn:
        parts.append("<h2>Marts</h2>")
        parts += [chart_block(s.title, c, e, s.description) for s, c, e in drawn]
    parts.append("<h2>Runs</h2>")
    rows = []
    for r in reversed(runs):
        secs = {s["name"]: s.get("seconds") for s in r.get("stages", [])
                if s.get("status") != "skipped"}  # fmt: skip
        rows.append([r["run_id"], r.get("status"), r.get("started_at"),
                     _seconds(r.get("started_at"), r.get("finished_at")),
                     *(secs.get(n) for n in ("ingest", "check_raw", "build", "check_marts",
                                             "publish")),
                     r.get("error") or "; ".join(r.get("skipped") or []) or
                     ("nothing new" if r.get("nothing_new_since") else "")])  # fmt: skip
    parts.append(_table(["run", "status", "started", "seconds", "ingest", "raw gate", "build",
                         "mart gate", "publish", "note"], rows))  # fmt: skip
    for title, chart in run_charts(runs).items():
        parts.append(chart_block(title, chart))
    parts.append("<h2>Tables</h2>")
    latest = next((r for r in reversed(runs) if (r.get("monitor") or {}).get("tables")), None)
    raw = (latest or {}).get("monitor", {}).get("tables", {})
    parts.append(_table(["raw table", "rows", "quarantined"],
                        [[t, f"{v['rows']:,}", f"{v['quarantined']:,}"]
                         for t, v in sorted(raw.items())]))  # fmt: skip
    parts.append(_table(["published mart", "rows"], _mart_rows(project)))
    parts.append("<h2>Quality</h2>")
    quality = []
    for r in reversed(runs[-5:]):
        for s in r.get("stages", []):
            for res in (s.get("details") or {}).get("results") or []:
                if not res.get("success"):
                    quality.append([r["run_id"], s["name"], res.get("suite"),
                                    res.get("expectation"), res.get("severity"),
                                    res.get("observed")])  # fmt: skip
    parts.append(_table(["run", "gate", "suite", "expectation", "severity", "observed"], quality)
                 if quality else "<p>Every expectation of the last 5 runs passed.</p>")  # fmt: skip

    alt.data_transformers.disable_max_rows()
    bundle = vlc.javascript_bundle()  # type: ignore[call-arg]  # its snippet is optional
    bundle = bundle.replace("</script", "<\\/script")
    embed = json.dumps({cid: spec for cid, spec in specs})
    script = (
        f"const specs = {embed};\n"
        "for (const [id, spec] of Object.entries(specs)) {\n"
        "  vegaEmbed('#' + id, spec, {renderer: 'svg', actions: false})\n"
        "    .then(() => document.getElementById(id).dataset.rendered = 'yes')\n"
        "    .catch(e => { document.getElementById(id).textContent = 'chart error: ' + e; });\n"
        "}\n"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(project.spec.name)}: lakehouse report</title>"
        f"<style>{STYLE}</style><script>{bundle}</script></head><body>"
        + "\n".join(parts)
        + f"<script>{script}</script></body></html>"
    )


def write_report(project: Project, out: Path | None = None, runs: int | None = None) -> Path:
    path = out or project.warehouse_dir / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render(project, runs), encoding="utf-8")
    tmp.replace(path)
    return path
