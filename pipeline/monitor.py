"""After every run: how fresh each raw table is, whether its volume looks normal, and alerts.

- Freshness uses dbt's own declarations (`freshness:` and `loaded_at_field:` on the dbt
  sources, read from the last build's manifest), measured from the lake's batch log (when
  `loaded_at_field` is `_ingested_at`) or `max(loaded_at_field)`. It is measured on every
  run, including one with nothing new, without starting dbt.
- Volume: the rows a run landed in a table against the median of that table's recent
  runs that landed rows (`alerts.volume_factor` times more or less is an anomaly).
- Alerts (a stale table, a volume anomaly, a failed or partial run) go to stderr and to
  `alerts.webhook_url` as JSON (`text` for Slack, `alerts` for anything else). What fired
  is kept in the lake (`alerts/state.json`): an alert is sent once, and once more when it
  is resolved, not on every run.
"""

from __future__ import annotations

import json
import logging
import statistics
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lake import TableState
from pipeline.config import Project

log = logging.getLogger("lakehouse.alerts")
STATE_KEY = "alerts/state.json"
_PERIODS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass
class Alert:
    key: str
    """What fired, stable across runs: `stale:shop.orders`, `volume:shop.orders`,
    `run:failed`."""
    severity: str
    message: str


def _manifest_sources(project: Project) -> list[dict[str, Any]]:
    path = project.dbt_target / "manifest.json"
    if not path.exists():
        return []
    try:
        sources = json.loads(path.read_text()).get("sources", {})
    except ValueError:
        return []
    return list(sources.values())


def _age_limit(rule: dict[str, Any] | None) -> float | None:
    if not rule or not rule.get("count") or rule.get("period") not in _PERIODS:
        return None
    return float(rule["count"]) * _PERIODS[rule["period"]]


def freshness(
    project: Project, now: datetime, all_states: list[TableState]
) -> dict[str, dict[str, Any]]:
    """Per raw table with a declared freshness: its newest data, age and status."""
    from lake.duck import quote_ident

    states = {f"{s.source}.{s.table}": s for s in all_states}
    out: dict[str, dict[str, Any]] = {}
    con = None
    try:
        for source in _manifest_sources(project):
            rules = source.get("freshness") or (source.get("config") or {}).get("freshness")
            warn, error = (
                _age_limit((rules or {}).get("warn_after")),
                _age_limit((rules or {}).get("error_after")),
            )
            name = f"{source.get('source_name')}.{source.get('name')}"
            state = states.get(name)
            if (warn is None and error is None) or state is None:
                continue
            field = source.get("loaded_at_field") or "_ingested_at"
            newest: datetime | None = None
            if field == "_ingested_at":
                landed = [b.committed_at for b in state.batches if b.in_raw_zone and b.rows]
                newest = datetime.fromisoformat(max(landed)) if landed else None
            else:
                con = con or project.lake.connect(lake_read_only=True)
                row = con.execute(
                    f"SELECT max({quote_ident(field)})::TIMESTAMPTZ FROM lake."
                    f"{quote_ident(state.source)}.{quote_ident(state.table)}"
                ).fetchone()
                newest = row[0] if row else None
            if newest is not None and newest.tzinfo is None:
                newest = newest.replace(tzinfo=UTC)
            age = (now - newest).total_seconds() if newest else None
            status = "pass"
            if age is None or (error is not None and age > error):
                status = "error"
            elif warn is not None and age > warn:
                status = "warn"
            out[name] = {"newest": newest.isoformat() if newest else None,
                         "age_s": round(age) if age is not None else None, "status": status,
                         "warn_after_s": warn, "error_after_s": error}  # fmt: skip
    finally:
        if con is not None:
            con.close()
    return out


def volumes(
    record: dict[str, Any], history: list[dict[str, Any]], factor: float, window: int
) -> dict[str, dict[str, Any]]:
    """Per table this run landed rows in: the rows, the median of its last `window` runs
    that landed rows (3 at least), and whether this run is `factor` times off it."""

    def landed(run: dict[str, Any]) -> dict[str, int]:
        stage = next((s for s in run.get("stages", []) if s["name"] == "ingest"), None)
        tables = (stage or {}).get("details", {}).get("tables", {})
        return {name: int(t.get("rows") or 0) for name, t in tables.items()}

    out: dict[str, dict[str, Any]] = {}
    past = [landed(r) for r in history if r.get("run_id") != record.get("run_id")]
    for name, rows in landed(record).items():
        if rows <= 0:
            continue
        seen = [p[name] for p in past if p.get(name, 0) > 0][-window:]
        entry: dict[str, Any] = {"rows": rows, "median": None, "anomaly": False}
        if len(seen) >= 3:
            median = statistics.median(seen)
            entry["median"] = median
            entry["anomaly"] = rows > median * factor or rows < median / factor
        out[name] = entry
    return out


def table_totals(states: list[TableState]) -> dict[str, dict[str, int]]:
    """Rows and quarantined rows per raw table (what the run summary prints)."""
    return {f"{s.source}.{s.table}": {"rows": s.rows, "quarantined": s.quarantined}
            for s in states}  # fmt: skip


def evaluate(project: Project, record: dict[str, Any], history: list[dict[str, Any]],
             now: datetime) -> tuple[dict[str, Any], list[Alert], set[str]]:  # fmt: skip
    """(what was measured, the alerts firing, the alert keys found healthy)."""
    settings = project.spec.alerts
    states = project.lake.states()
    fresh = freshness(project, now, states)
    volume = volumes(record, history, settings.volume_factor, settings.volume_history)
    firing: list[Alert] = []
    healthy: set[str] = set()
    for name, f in fresh.items():
        key = f"stale:{name}"
        if f["status"] == "pass":
            healthy.add(key)
            continue
        age = f"{timedelta(seconds=f['age_s'])}" if f["age_s"] is not None else "no data yet"
        limit = f["error_after_s"] if f["status"] == "error" else f["warn_after_s"]
        firing.append(Alert(key, f["status"], f"{name} is stale: newest data {age} old "
                            f"(limit {timedelta(seconds=limit or 0)})"))  # fmt: skip
    for name, v in volume.items():
        key = f"volume:{name}"
        if v["median"] is None:
            continue
        if not v["anomaly"]:
            healthy.add(key)
            continue
        firing.append(Alert(key, "warn", f"{name}: this run landed {v['rows']:,} rows, its "
                            f"recent runs {v['median']:,.0f} (median)"))  # fmt: skip
    status = record.get("status")
    for bad in ("failed", "partial"):
        key = f"run:{bad}"
        if status == bad:
            detail = record.get("error") or "; ".join(record.get("skipped") or [])
            firing.append(Alert(key, "error", f"run {record.get('run_id')} {bad}: {detail}"))
        elif status in ("passed", "quarantined"):
            healthy.add(key)
    return {"tables": table_totals(states), "freshness": fresh, "volume": volume}, firing, healthy


def notify(project: Project, run_id: str, firing: list[Alert], healthy: set[str]) -> list[Alert]:
    """Send what is new since the last run (and what got resolved); returns the new ones.
    An alert whose delivery failed is sent again by the next run."""
    storage = project.lake.storage
    raw = storage.read_bytes(STATE_KEY)
    state: dict[str, Any] = json.loads(raw) if raw else {}
    new = [a for a in firing if a.key not in state]
    resolved = sorted(k for k in state if k in healthy)
    for alert in new:
        log.warning("ALERT %s: %s", alert.severity, alert.message)
    for key in resolved:
        log.warning("RESOLVED %s", key)
    if not new and not resolved:
        return []
    url = project.spec.alerts.webhook_url
    if url and not _post(url, project.spec.name, run_id, new, resolved):
        return new  # not recorded: the next run tries again
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for alert in new:
        state[alert.key] = {"since": now, "run_id": run_id, **asdict(alert)}
    for key in resolved:
        state.pop(key, None)
    storage.write_bytes(STATE_KEY, json.dumps(state, indent=1).encode())
    return new


def _post(url: str, project: str, run_id: str, new: list[Alert], resolved: list[str]) -> bool:
    import requests
    from tenacity import retry, stop_after_attempt, wait_exponential

    lines = [f"[{a.severity}] {a.message}" for a in new] + [f"resolved: {k}" for k in resolved]
    body = {
        "text": f"lakehouse {project}, run {run_id}:\n" + "\n".join(lines),
        "project": project,
        "run_id": run_id,
        "alerts": [asdict(a) for a in new],
        "resolved": resolved,
    }

    @retry(stop=stop_after_attempt(3), wait=wait_exponential(multiplier=0.5, max=4), reraise=True)
    def send() -> None:
        requests.post(url, json=body, timeout=10).raise_for_status()

    try:
        send()
    except requests.RequestException as exc:  # the URL is a secret (Slack's are): not logged
        code = exc.response.status_code if exc.response is not None else None
        log.error("could not deliver %d alert(s) to alerts.webhook_url: %s", len(lines),
                  f"HTTP {code}" if code else type(exc).__name__)  # fmt: skip
        return False
    return True
