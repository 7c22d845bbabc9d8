"""What `lakehouse.yml` declares for pushed data: the HTTP event collector (`collector:`)
and MQTT brokers (`mqtt:` of a `kind: mqtt` source)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CollectorSettings(_Strict):
    """`lakehouse collect`: receives events over HTTP (`POST /v1/<source>/<table>`) for
    `kind: events` sources and subscribes to `kind: mqtt` sources; lands both in
    micro-batches."""

    host: str = Field("127.0.0.1", description="Interface to listen on (0.0.0.0: every one).")
    port: int = Field(8766, ge=0, le=65535, description="TCP port (0: any free one).")
    token: str | None = Field(
        None, description="Bearer token clients must send (a secret: use ${VAR}); unset: none."
    )
    log_dir: str = Field(
        "data/collector",
        description="Local folder of the write-ahead log: accepted events "
        "wait there, fsynced, until their micro-batch commits (replayed after a crash).",
    )
    max_batch_s: float = Field(
        0.5,
        gt=0,
        le=60,
        description="A micro-batch commits when its oldest event is this "
        "old, or at `max_batch_events`, whichever comes first.",
    )
    max_batch_events: int = Field(50_000, ge=1, description="Events per micro-batch at most.")
    max_pending_events: int = Field(
        500_000,
        ge=1,
        description="Back-pressure: above this many accepted events not yet "
        "in the lake, new requests get 429 with Retry-After instead of growing the log.",
    )
    max_request_mb: float = Field(16, gt=0, description="Largest request body accepted.")
    inline_rows: int = Field(
        1_000,
        ge=0,
        description="Micro-batches up to this many rows per table are kept in the catalog "
        "(DuckLake data inlining: a trickle of events makes no small files); larger ones "
        "are written as Parquet, faster than rows into the catalog.",
    )
    flush_every_s: float = Field(
        300,
        gt=0,
        description="Flush inlined rows to Parquet and merge small files this "
        "often, in the background (readers are not stopped).",
    )
    dedupe_window: str = Field(
        "7 days",
        description="Tables with a primary_key drop events whose key landed within "
        "this interval (client retries, MQTT redeliveries).",
    )


class MqttOptions(_Strict):
    """An MQTT broker: a persistent session at QoS 1, each message acknowledged only after
    its micro-batch commits, so a crash makes the broker deliver it again."""

    host: str = Field("127.0.0.1", description="Broker host.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port.")
    client_id: str | None = Field(
        None,
        description="Session identity (default lakehouse-<source>): keep it stable, "
        "the broker keeps unacknowledged messages for it while the collector is down.",
    )
    username: str | None = Field(None, description="Broker user name.")
    password: str | None = Field(None, description="Broker password (a secret: use ${VAR}).")
    keepalive_s: int = Field(30, ge=5, description="MQTT keep-alive interval.")
    session_expiry_s: int = Field(
        7 * 24 * 3600,
        ge=0,
        description="How long the broker keeps the session (and its "
        "queued messages) while the collector is away.",
    )
    max_inflight: int = Field(
        20_000, ge=1, le=65_535, description="Messages the broker may send before one is "
        "acknowledged (MQTT 5 receive maximum): a micro-batch commits at half of it.",
    )  # fmt: skip
