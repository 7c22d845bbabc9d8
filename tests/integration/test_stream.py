"""Real time end to end: reviews posted to `lakehouse collect` reach the published
`fct_reviews`, fraud flags and all, through `lakehouse stream`; the other marts stay as
the batch run published them."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pipeline.config import Project
from pipeline.serve import current, history, query
from tests.conftest import ProjectFactory
from tests.integration.test_collector import (  # noqa: F401  (the fixture)
    Collecting,
    _no_process_left,
    _started,
)


def _flag(project: Project, review_id: int) -> tuple | None:
    rows = query(project, "SELECT is_suspected_fraud, fraud_score, fraud_reasons FROM "
                 f"fct_reviews WHERE review_id = {review_id}")[1]  # fmt: skip
    return tuple(rows[0]) if rows else None


def test_a_fraud_ring_is_flagged_in_the_published_marts_seconds_after_posting(
    make_project: ProjectFactory,
) -> None:
    project = make_project(built=True)  # the day's batch run: every mart published
    orders_at = current(project).snapshots["fct_orders"]  # type: ignore[union-attr]
    collector = Collecting(project)
    streamer = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "--project", str(project.path), "stream"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _started.append(streamer)
    try:
        deadline = time.monotonic() + 180
        while len(history(project)) < 2:  # its first cycle publishes what is there now
            assert streamer.poll() is None, streamer.stderr.read() if streamer.stderr else ""
            assert time.monotonic() < deadline, "the stream published nothing"
            time.sleep(0.2)

        # three new accounts behind one IP, minutes apart, the same words, a product none
        # of them bought: the third review is a burst, so suspected fraud
        now = datetime.now(UTC)
        ring = [{"review_id": 900_000 + i, "product_id": 1, "customer_id": 990_000 + i,
                 "rating": 5, "body": "Best purchase EVER!!!", "author_ip": "203.0.113.7",
                 "author_verified": False,
                 "posted_at": (now + timedelta(minutes=5 * i)).isoformat()}
                for i in range(3)]  # fmt: skip
        assert collector.post(ring, stream="live/reviews").status_code == 200
        posted = time.monotonic()
        while _flag(project, 900_002) is None:
            assert streamer.poll() is None, streamer.stderr.read() if streamer.stderr else ""
            assert time.monotonic() - posted < 120, "the review never reached fct_reviews"
            time.sleep(0.2)
        assert _flag(project, 900_002)[:2] == (True, Decimal("0.80"))
        assert _flag(project, 900_000)[:2] == (False, Decimal("0.45"))  # (no burst yet: 1 of 3)
        assert sorted(_flag(project, 900_002)[2]) == [
            "burst of reviews from one account or IP", "reviewer never bought the product",
            "text duplicated in another review"]  # fmt: skip
        # the day's KPIs count it too; the marts that are not real time are untouched
        kpi = query(project, "SELECT reviews FROM mart_daily_kpis WHERE kpi_date = "
                    f"DATE '{(now + timedelta(minutes=10)).date()}'")[1]  # fmt: skip
        assert kpi and kpi[0][0] >= 1
        published = current(project)
        assert published is not None and published.run_id.startswith("stream-")
        assert published.snapshots["fct_orders"] == orders_at
        assert published.snapshots["fct_reviews"] > orders_at
    finally:
        streamer.send_signal(signal.SIGTERM)
        assert streamer.wait(120) == 0
        assert collector.stop() == 0
