"""An embedded MQTT broker for `ev-gateway demo` when no broker is reachable.

amqtt is pure Python and speaks MQTT 3.1.1 only; it listens on loopback alone,
anonymously, so the demo works on a machine with nothing installed. It is never used
by `ev-gateway run`: a real installation points at a real broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def broker_reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections at host:port."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


@contextlib.asynccontextmanager
async def embedded_broker(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[int]:
    """Run an amqtt broker on loopback; yields the port it listens on."""
    try:
        from amqtt.broker import Broker
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "no MQTT broker is reachable and amqtt is not installed for the embedded one; "
            "install mosquitto or `pip install 'ev-gateway[demo]'`"
        ) from exc
    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.WARNING)
    chosen = port or free_port(host)
    config: dict[str, Any] = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{chosen}"}},
        "sys_interval": 0,
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }
    broker = Broker(config)
    await broker.start()
    try:
        yield chosen
    finally:
        await broker.shutdown()
