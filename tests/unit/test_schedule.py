"""Which run `lakehouse schedule` starts when: the default schedule for everything, a
source's own schedule for it, both at once as one whole run, missed ticks not replayed."""

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.config import ConfigError, load_project
from pipeline.schedule import FULL_TESTS, advance, describe, due, full_tests_due, jobs

PROJECT = """
schedule:
  default: "0 * * * *"
  timezone: {tz}
sources:
  - name: shop
    kind: csv
    tables: [{{name: orders, path: o.csv}}]
  - name: iot
    kind: csv
    schedule: "*/20 * * * *"
    tables: [{{name: readings, path: r.csv}}]
"""


def _project(tmp_path: Path, text: str | None = None):
    path = tmp_path / "lakehouse.yml"
    path.write_text(text or PROJECT.format(tz="UTC"))
    return load_project(path, env={})


def test_a_sources_own_schedule_runs_it_alone_and_the_default_runs_everything(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path)
    start = datetime(2026, 11, 24, 10, 5, tzinfo=UTC)
    pending = jobs(project, start)
    assert due(pending, start) is None
    assert due(pending, datetime(2026, 11, 24, 10, 20, tzinfo=UTC)) == ["iot"]
    assert [what for _, what in describe(project, start, 4)] == [
        "sources iot",  # 10:20
        "sources iot",  # 10:40
        "every source",  # 11:00: both are due; the whole run covers iot
        "sources iot",  # 11:20
    ]
    assert [at.strftime("%H:%M") for at, _ in describe(project, start, 4)] == [
        "10:20", "10:40", "11:00", "11:20",
    ]  # fmt: skip


def test_every_data_test_runs_over_all_rows_weekly_after_the_run_due_then(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path)
    saturday = datetime(2026, 11, 28, 23, 30, tzinfo=UTC)
    assert saturday.strftime("%A") == "Saturday"
    pending = jobs(project, saturday)
    sunday_3am = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    assert not full_tests_due(pending, datetime(2026, 11, 29, 2, 59, tzinfo=UTC))
    assert full_tests_due(pending, sunday_3am) and due(pending, sunday_3am) == []
    plan = [(at.strftime("%a %H:%M"), what) for at, what in describe(project, saturday, 13)]
    assert plan[-3:] == [("Sun 03:00", "every source"),
                         ("Sun 03:00", "every data test over all rows"),
                         ("Sun 03:20", "sources iot")]  # fmt: skip
    off = PROJECT.format(tz="UTC").replace("  timezone:", "  full_tests: null\n  timezone:")
    assert FULL_TESTS not in [j.name for j in jobs(_project(tmp_path, off), saturday)]


def test_missed_ticks_are_not_run_twice(tmp_path: Path) -> None:
    project = _project(tmp_path)
    pending = jobs(project, datetime(2026, 11, 24, 10, 5, tzinfo=UTC))
    late = datetime(2026, 11, 24, 11, 45, tzinfo=UTC)  # a run took 100 minutes
    assert due(pending, late) == []  # one whole run, not five
    advance(pending, late, ZoneInfo("UTC"))
    assert due(pending, late) is None
    runs = [j for j in pending if j.name != FULL_TESTS]
    assert sorted(j.next_at.strftime("%H:%M") for j in runs) == ["12:00", "12:00"]


def test_cron_is_read_in_the_schedules_time_zone(tmp_path: Path) -> None:
    text = PROJECT.format(tz="America/New_York").replace('"0 * * * *"', '"30 2 * * *"')
    project = _project(tmp_path, text)
    whole = [at for at, what in describe(project, datetime(2026, 7, 1, tzinfo=UTC), 80)
             if what == "every source"]  # fmt: skip
    assert whole[0] == datetime(2026, 7, 1, 6, 30, tzinfo=UTC)  # 02:30 EDT


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('"*/20 * * * *"', '"every 20 minutes"'),
         "sources[1] (iot).schedule: 'every 20 minutes' is not a cron expression"),
        (("timezone: UTC", "timezone: Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
    ],
)  # fmt: skip
def test_a_bad_schedule_is_a_config_error(tmp_path: Path, change, message) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        _project(tmp_path, PROJECT.format(tz="UTC").replace(*change))


def test_nothing_to_schedule_says_how(tmp_path: Path) -> None:
    text = "sources:\n  - {name: shop, kind: csv, tables: [{name: o, path: o.csv}]}\n"
    with pytest.raises(ConfigError, match=re.escape("set `schedule.default`")):
        jobs(_project(tmp_path, text), datetime(2026, 1, 1, tzinfo=UTC))
