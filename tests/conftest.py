"""Shared fixtures: a real mosquitto broker on a free port, and an MQTT probe client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from hypothesis import settings

# Property tests draw the same examples on every run, so CI cannot turn red on an edge
# case found by chance; EVGW_HYPOTHESIS_EXPLORE=1 draws new ones (do, before a release,
# and pin what they find with @example).
settings.register_profile("repeatable", derandomize=True, database=None)
if not os.environ.get("EVGW_HYPOTHESIS_EXPLORE"):
    settings.load_profile("repeatable")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Mosquitto:
    """A mosquitto process on loopback that a test may stop and start again."""

    port: int
    conf: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            pytest.fail("mosquitto is not installed: apt-get install -y mosquitto")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([binary, "-c", str(self.conf)], stderr=log, stdout=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"mosquitto exited: {self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"mosquitto did not listen on {self.port}: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh broker per test (retained state never leaks between tests)."""
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "log_dest stderr\nlog_type error\nlog_type warning\n"
    )
    broker = Mosquitto(port, conf, tmp_path / "mosquitto.log")
    broker.start()
    yield broker
    broker.stop()


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    properties: Any
    at: float

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class MqttProbe:
    """A test client that records every message under its subscriptions."""

    client: aiomqtt.Client
    messages: list[Received] = field(default_factory=list)
    _new: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def _collect(self) -> None:
        async for message in self.client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            async with self._new:
                self.messages.append(
                    Received(
                        str(message.topic),
                        payload,
                        message.retain,
                        message.properties,
                        time.monotonic(),
                    )
                )
                self._new.notify_all()

    def on(self, topic: str) -> list[Received]:
        return [m for m in self.messages if aiomqtt.Topic(m.topic).matches(topic)]

    def last(self, topic: str) -> Received | None:
        found = self.on(topic)
        return found[-1] if found else None

    async def wait_for(
        self, topic: str, predicate: Any = None, timeout: float = 10.0, after: int = 0
    ) -> Received:
        """The first message on `topic` (index >= after) for which predicate(json) holds."""
        deadline = time.monotonic() + timeout
        async with self._new:
            while True:
                for message in self.messages[after:]:
                    if not aiomqtt.Topic(message.topic).matches(topic):
                        continue
                    if predicate is None or predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(m.topic, m.payload[:200]) for m in self.on(topic)[-5:]]
                    raise AssertionError(
                        f"nothing matching on {topic} in {timeout} s; last: {seen}"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new.wait(), remaining)

    async def ticks(self, count: int = 3, topic: str = "ev-gateway/pools/+/power") -> None:
        """Wait until `count` more messages arrive on `topic`: the gateway has ticked
        that many times (observed, not slept for)."""
        seen = len(self.on(topic))
        async with self._new, asyncio.timeout(10 + count):
            while len(self.on(topic)) < seen + count:
                await self._new.wait()

    async def publish(self, topic: str, payload: Any, **kwargs: Any) -> None:
        if isinstance(payload, dict | list):
            payload = json.dumps(payload)
        await self.client.publish(topic, payload, qos=1, **kwargs)


@pytest.fixture
async def probe(mosquitto: Mosquitto) -> AsyncIterator[MqttProbe]:
    """An MQTT 5 client subscribed to everything, recording messages."""
    client = aiomqtt.Client(
        mosquitto.host, port=mosquitto.port, protocol=aiomqtt.ProtocolVersion.V5
    )
    async with client:
        await client.subscribe("#", qos=1)
        recorder = MqttProbe(client)
        task = asyncio.create_task(recorder._collect())
        yield recorder
        task.cancel()
