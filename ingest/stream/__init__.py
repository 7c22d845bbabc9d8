"""Pushed data: the HTTP event collector and MQTT subscriptions, landed in micro-batches.

    client --POST--> collector --fsync--> write-ahead log --micro-batch--> lake.<src>.<t>
    broker --QoS 1-> subscriber ----------^                 (ack after the commit)

Nothing heavy is imported here: `lakehouse collect` imports `ingest.stream.server`.
"""

from ingest.stream.options import CollectorSettings, MqttOptions

__all__ = ["CollectorSettings", "MqttOptions"]
