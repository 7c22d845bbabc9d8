"""The source interface's Arrow path: a RecordBatchReader lands like a DuckDB relation."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from ingest.land import LINEAGE_COLUMNS, write_batch
from ingest.sources import Opened
from lake import Lake, LakeSettings, commit_batch, open_table


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
    lake = Lake(LakeSettings(str(tmp_path / "lake")))
    con = lake.connect()
    state, recovered = open_table(lake.storage, con, "api", "events")
    assert recovered is None

    record = commit_batch(
        lake.storage, state, "fp-1", "https://api.example/events?page=1..5",
        lambda uri, q_uri, load_id: write_batch(
            con, Opened(_reader(5, 1000)), uri, q_uri, load_id, "https://api.example/events"
        ),
    )  # fmt: skip
    assert record.rows == 5000 and record.quarantined == 0
    row = con.execute(
        "SELECT count(*), count(DISTINCT id), min(payload.tags[1]), any_value(_load_id) "
        "FROM read_parquet(?)",
        [lake.raw_glob_uri("api", "events")],
    ).fetchone()
    assert row == (5000, 5000, "0", record.load_id)
    columns = [
        r[0]
        for r in con.execute(
            f"DESCRIBE FROM read_parquet('{lake.uri(record.key)}', hive_partitioning = false)"
        ).fetchall()
    ]
    assert columns == ["id", "payload", *LINEAGE_COLUMNS]
    # nested data stays nested (ELT: raw keeps the source's shape)
    kind = con.execute(f"SELECT typeof(payload) FROM '{lake.uri(record.key)}' LIMIT 1").fetchone()
    assert kind == ("STRUCT(tags VARCHAR[])",)
