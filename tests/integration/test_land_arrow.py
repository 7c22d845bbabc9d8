"""The source interface's Arrow path: a RecordBatchReader lands like a DuckDB relation."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from ingest.land import LINEAGE_COLUMNS, write_batch
from ingest.sources import Opened
from lake import Lake, LakeSettings, NewBatch, commit_batch, layout, load_state, new_load_id


def _reader(batches: int, rows: int) -> pa.RecordBatchReader:
    schema = pa.schema(
        [("id", pa.int64()), ("payload", pa.struct([("tags", pa.list_(pa.string()))]))]
    )

    def gen():  # one batch at a time: memory is bounded by the batch, not the stream
        for b in range(batches):
            ids = list(range(b * rows, (b + 1) * rows))
            yield pa.record_batch(
                [pa.array(ids), pa.array([{"tags": [str(i)]} for i in ids])], schema=schema
            )

    return pa.RecordBatchReader.from_batches(schema, gen())


def test_arrow_stream_lands_as_one_batch_with_lineage(tmp_path: Path) -> None:
    lake = Lake(LakeSettings.resolve(str(tmp_path / "lake"), tmp_path, env={}))
    con = lake.connect()
    state = load_state(con, "api", "events")
    assert state.batches == [] and state.watermark is None

    load_id = new_load_id("fp-1")
    key = layout.batch_file_key("api", "events", load_id)
    lake.storage.ensure_parent(key)
    written = write_batch(con, Opened(_reader(5, 1000)), lake.uri(key), load_id,
                          "https://api.example/events")  # fmt: skip
    record = commit_batch(con, lake.storage, state, NewBatch(
        load_id, "api", "events", "events", "fp-1", "https://api.example/events?page=1..5",
        key, written.rows, [["id", "BIGINT"], ["payload", "STRUCT(tags VARCHAR[])"]],
    ))  # fmt: skip
    assert record.rows == 5000 and record.quarantined == 0
    row = con.execute(
        "SELECT count(*), count(DISTINCT id), min(payload.tags[1]), any_value(_load_id) "
        "FROM lake.api.events"
    ).fetchone()
    assert row == (5000, 5000, "0", record.load_id)
    columns = [r[0] for r in con.execute("DESCRIBE lake.api.events").fetchall()]
    assert columns == ["id", "payload", *LINEAGE_COLUMNS]
    # nested data stays nested (ELT: raw keeps the source's shape)
    kind = con.execute("SELECT typeof(payload) FROM lake.api.events LIMIT 1").fetchone()
    assert kind == ("STRUCT(tags VARCHAR[])",)
    # the batch's own file became the table's file: written once, never copied
    files = con.execute(
        "SELECT data_file FROM ducklake_list_files('lake', 'events', schema => 'api')"
    ).fetchall()
    assert [f[0] for f in files] == [lake.uri(key)]
    [logged] = load_state(con, "api", "events").batches  # the log holds it, with its commit
    assert (logged.load_id, logged.rows, logged.columns) == (record.load_id, 5000, record.columns)
    assert logged.snapshot_id is not None and logged.in_raw_zone
