"""A real Mosquitto MQTT broker on 127.0.0.1 for tests and benchmarks (the example's own
`examples.shop.live_demo.local_broker`, on a free port). `scripts/ensure-services.sh` (run by
`make install`) installs it where missing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from examples.shop.live_demo import local_broker
from tests.postgres import _free_port


@contextlib.contextmanager
def mosquitto_server() -> Iterator[tuple[str, int]]:
    """Run a throwaway broker; yields (host, port)."""
    with local_broker(_free_port()) as address:
        yield address
