"""Start a real Mosquitto MQTT broker on 127.0.0.1 (tests and benchmarks share this).
`scripts/ensure-services.sh` (run by `make install`) installs it where missing."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.postgres import _free_port

# what a broker feeding a lake needs besides the defaults: no cap on the messages in
# flight to a client that acknowledges a whole micro-batch at once (default 20), nor on
# the messages queued for it while it is away (default 1,000: the rest would be dropped)
CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 0
max_queued_messages 0
"""


def mosquitto_bin() -> str:
    sbin = Path("/usr/sbin/mosquitto")  # (not on a non-root PATH)
    found = shutil.which("mosquitto") or (str(sbin) if sbin.exists() else None)
    if not found:
        raise RuntimeError("mosquitto not found: run scripts/ensure-services.sh")
    return found


@contextlib.contextmanager
def mosquitto_server() -> Iterator[tuple[str, int]]:
    """Run a throwaway broker; yields (host, port)."""
    root = Path(tempfile.mkdtemp(prefix="lakehouse-mqtt-"))
    port = _free_port()
    (root / "mosquitto.conf").write_text(CONFIG.format(port=port))
    log = (root / "mosquitto.log").open("w")
    proc = subprocess.Popen([mosquitto_bin(), "-c", str(root / "mosquitto.conf")],
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"mosquitto did not start: {(root / 'mosquitto.log').read_text()}"
                )
            time.sleep(0.05)
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
        log.close()
        shutil.rmtree(root, ignore_errors=True)
