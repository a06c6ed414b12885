"""The real daemon process under a proposal flood: SIGTERM still ends it, with `offline`."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiomqtt

from tests.conftest import Mosquitto, free_port

BASE = "ev-gateway"
PROPOSE = f"{BASE}/pools/default/propose_power"


def config_text(mosquitto: Mosquitto, sim_port: int) -> str:
    return (
        f'[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto.port}\n'
        "[power]\nresampling_period = 0.5\n"
        "[homeassistant]\nenabled = false\n"
        f'[[chargers]]\nid = "bay-1"\nadapter = "modbus"\nprofile = "generic"\n'
        f'host = "127.0.0.1"\nport = {sim_port}\n'
    )


async def flood(mosquitto: Mosquitto, stop: asyncio.Event) -> int:
    """Publish proposals from 5 sources as fast as the broker takes them, until `stop`."""
    sent = 0
    async with aiomqtt.Client(mosquitto.host, port=mosquitto.port) as client:
        while not stop.is_set():
            for source in range(5):
                body = {"source": f"s{source}", "power": sent % 11040, "transaction": sent}
                await client.publish(PROPOSE, json.dumps(body), qos=0)
                sent += 1
            if sent % 250 == 0:
                await asyncio.sleep(0)
    return sent


async def test_sigterm_during_a_flood_ends_the_daemon_with_offline(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    sim_port = free_port()
    simulate = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "simulate", "--port", str(sim_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    config = tmp_path / "gateway.toml"
    config.write_text(config_text(mosquitto, sim_port))
    log = tmp_path / "run.log"
    run = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run", "--config", str(config)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with aiomqtt.Client(mosquitto.host, port=mosquitto.port) as watcher:
            await watcher.subscribe(f"{BASE}/bridge/state", qos=1)
            await watcher.subscribe(f"{PROPOSE}/response", qos=0)
            replies = 0
            async with asyncio.timeout(30):
                async for message in watcher.messages:
                    if message.payload == b"online":
                        break
            stop = asyncio.Event()
            flooding = asyncio.create_task(flood(mosquitto, stop))
            async with asyncio.timeout(30):
                async for message in watcher.messages:
                    replies += str(message.topic).endswith("/response")
                    if replies >= 200:
                        break  # the daemon is busy answering the flood
            signalled = time.monotonic()
            run.send_signal(signal.SIGTERM)
            exit_code = await asyncio.to_thread(run.wait, 30)
            took = time.monotonic() - signalled
            stop.set()
            sent = await flooding
            async with asyncio.timeout(10):
                async for message in watcher.messages:
                    if str(message.topic) == f"{BASE}/bridge/state":
                        state = message.payload
                        if state == b"offline":
                            break
        assert exit_code == 0
        assert took < 10, f"SIGTERM to exit took {took:.1f} s"
        assert state == b"offline"
        assert sent > 200
        text = log.read_text()
        assert "Traceback" not in text, text[-3000:]
        assert len(text.splitlines()) < 50, text[-3000:]  # counts, not a line per message
    finally:
        for process in (run, simulate):
            if process.poll() is None:
                process.kill()
                process.wait(5)
