"""MQTT sources: a persistent session (MQTT 5, clean_start false) at QoS 1, with manual
acknowledgements. A message is acknowledged only once its micro-batch is in the lake;
until then the broker keeps it, and delivers it again after a crash (the table's
primary_key drops what had landed already)."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.config import SourceConfig
from ingest.stream.collector import Collector, Unparsed

log = logging.getLogger("lakehouse.collect")


class Subscriber:
    def __init__(self, collector: Collector, source: SourceConfig) -> None:
        assert source.mqtt is not None
        self.collector = collector
        self.source = source
        self.options = source.mqtt
        self.paused = False
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.options.client_id or f"lakehouse-{source.name}",
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self.options.username:
            self.client.username_pw_set(self.options.username, self.options.password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._inbox: list[mqtt.MQTTMessage] = []

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.options.session_expiry_s
        props.ReceiveMaximum = self.options.max_inflight
        self.client.connect_async(
            self.options.host,
            self.options.port,
            self.options.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()

    def pause(self) -> None:
        self.paused = True

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.error(
                "%s: broker %s:%s refused the connection: %s",
                self.source.name,
                self.options.host,
                self.options.port,
                reason,
            )
            return
        client.subscribe([(t.topic or "#", 1) for t in self.source.tables])
        log.info(
            "%s: subscribed to %s (session present: %s)",
            self.source.name,
            ", ".join(t.topic or "" for t in self.source.tables),
            flags.session_present,
        )

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.warning(
                "%s: disconnected from the broker (%s); reconnecting", self.source.name, reason
            )

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # (paho's thread: the log belongs to the event loop, which takes what arrived
        # since its last look in one go: one write and one wake-up for many messages)
        with self._lock:
            self._inbox.append(msg)
            first = len(self._inbox) == 1
        if first and self._loop is not None:
            self._loop.call_soon_threadsafe(self._accept)

    def _accept(self) -> None:
        with self._lock:
            messages, self._inbox = self._inbox, []
        if self.paused:
            return  # not acknowledged: delivered again next session
        by_table: dict[str, list[mqtt.MQTTMessage]] = {}
        for msg in messages:
            table = next((t for t in self.source.tables
                          if mqtt.topic_matches_sub(t.topic or "", msg.topic)), None)  # fmt: skip
            if table is None:
                self.client.ack(msg.mid, msg.qos)
            else:
                by_table.setdefault(table.name, []).append(msg)
        for name, got in by_table.items():
            events: list[Any] = []
            for msg in got:
                try:
                    events.append(orjson.loads(msg.payload))
                except orjson.JSONDecodeError as exc:
                    events.append(Unparsed(msg.payload.decode(errors="replace"),
                                           f"not JSON: {exc}"))  # fmt: skip
            acks = [(msg.mid, msg.qos) for msg in got]

            def ack(acks: list[tuple[int, int]] = acks) -> None:
                for mid, qos in acks:
                    self.client.ack(mid, qos)

            self.collector.accept(self.source.name, name, events, "mqtt", ack=ack,
                                  topics=[msg.topic for msg in got])  # fmt: skip
