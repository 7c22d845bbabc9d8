"""Failing gates stop the run with a message that names what failed; nothing is published."""

from __future__ import annotations

import pytest

from lake import load_state
from pipeline.errors import StageFailed
from pipeline.run import run_pipeline
from tests.integration.helpers import cli, shop_db


def test_bad_raw_batch_fails_the_raw_gate_and_keeps_the_published_marts(make_project) -> None:
    project = make_project()
    run_pipeline(project)
    published = project.serving_db.read_bytes()

    # the application writes bad orders; the incremental extract picks them up
    for row in [
        (900002, 5, "placed"),  # fine
        (900001, 5, "placed"),
        (900001, 6, "placed"),  # duplicate key in the batch
        (None, 7, "lost"),  # null key, unknown status
    ]:
        shop_db(project, "INSERT INTO orders VALUES (?, ?, ?, '2026-04-01 10:00:00', 'EUR', "
                "4.99, '2026-06-01 00:00:00')", row)  # fmt: skip
    with pytest.raises(StageFailed) as info:
        run_pipeline(project)
    message = str(info.value)
    state = load_state(project.lake.storage, "shop", "orders")
    new_load_id = state.batches[-1].load_id
    assert message.startswith("check_raw failed: raw gate failed")
    assert new_load_id in message  # the batch
    assert "shop.orders" in message  # the table
    assert "expect_column_values_to_not_be_null(column='order_id')" in message
    assert "expect_column_values_to_be_unique(column='order_id')" in message
    assert "expect_column_values_to_be_in_set(column='status'" in message
    assert "'lost'" in message  # a sample of the failing values
    # the gate only looked at the new batch (the 4 new rows and the lag window's
    # re-read), not the whole history
    batch_rows = state.batches[-1].rows
    assert 4 <= batch_rows < 100 and f"of {batch_rows} rows" in message
    assert project.serving_db.read_bytes() == published
    assert state.batches[-1].gate == "failed"
    assert all(b.gate == "passed" for b in state.batches[:-1])

    # the failed batch is checked again on the next run: the CLI says the same in one
    # line and exits non-zero
    result = cli(project, "run")
    assert result.returncode == 1
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("error: check_raw failed: raw gate failed")
    assert "Traceback" not in result.stderr
    status = cli(project, "status")
    assert "1 batch(es) FAILED the raw gate" in status.stdout


def test_failing_mart_gate_publishes_nothing(make_project) -> None:
    project = make_project()
    run_pipeline(project)
    published = project.serving_db.read_bytes()

    # a discount larger than the line: negative revenue
    shop_db(project, "INSERT INTO order_items VALUES (99999999, 1, 1, 1, 10.00, 500.00)")
    with pytest.raises(StageFailed) as info:
        run_pipeline(project)
    message = str(info.value)
    assert message.startswith("check_marts failed: marts gate failed")
    assert "fct_orders: expect_column_pair_values_a_to_be_greater_than_b" in message
    assert "expect_column_values_to_be_between(column='net_amount'" in message
    assert project.serving_db.read_bytes() == published


def test_check_command_runs_a_gate_by_hand(make_project) -> None:
    project = make_project()
    run_pipeline(project)
    result = cli(project, "check", "marts")
    assert result.returncode == 0, result.stderr
    assert "marts gate passed" in result.stdout
    assert result.stdout.count("ok  ") >= 7
