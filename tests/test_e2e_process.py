"""The real `ev-gateway` processes: `simulate` serving chargers, `run` publishing them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiomqtt

from tests.conftest import Mosquitto, free_port

BASE = "ev-gateway"


async def test_run_and_simulate_processes_publish_the_topics(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    sim_port = free_port()
    simulate = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "simulate", "--profile", "alfen-eve",
         "--port", str(sim_port), "--count", "1"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "simulate.log").open("wb"),
    )  # fmt: skip
    example = Path(__file__).parent.parent / "config" / "example.toml"
    config = tmp_path / "gateway.toml"
    # The shipped example, pointed at this test's broker and simulator.
    text = example.read_text().replace("port = 1883", f"port = {mosquitto.port}")
    text = text.replace("port = 5020", f"port = {sim_port}")
    config.write_text(text)
    env = {**os.environ, "EVGW_POWER__RESAMPLING_PERIOD": "0.5"}
    run = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "run.log").open("wb"), env=env,
    )  # fmt: skip
    seen: dict[str, bytes] = {}
    try:
        async with aiomqtt.Client(mosquitto.host, port=mosquitto.port) as client:
            await client.subscribe(f"{BASE}/#")
            await client.subscribe("homeassistant/#")
            wanted = {
                f"{BASE}/bridge/state",
                f"{BASE}/bridge/info",
                f"{BASE}/pools/garage/component_ids",
                f"{BASE}/pools/garage/power",
                f"{BASE}/pools/garage/current_per_phase",
                f"{BASE}/pools/garage/system_power_bounds",
                f"{BASE}/chargers/bay-1/state",
            }
            async with asyncio.timeout(20):
                async for message in client.messages:
                    seen[str(message.topic)] = message.payload  # type: ignore[assignment]
                    bay1 = seen.get(f"{BASE}/chargers/bay-1/state")
                    if wanted <= seen.keys() and bay1 and json.loads(bay1)["status"] == "working":
                        break
            assert seen[f"{BASE}/bridge/state"] == b"online"
            power = json.loads(seen[f"{BASE}/pools/garage/power"])
            # bay-2 and bay-3 have no simulator in this test: they are missing
            assert set(power["missing"]) == {"bay-2", "bay-3"}
            state = json.loads(seen[f"{BASE}/chargers/bay-1/state"])
            assert state["voltage_per_phase"]["value_p1"] == 230.0
            assert any(t.startswith("homeassistant/sensor/") for t in seen)
            run.send_signal(signal.SIGTERM)
            assert run.wait(15) == 0
        async with aiomqtt.Client(mosquitto.host, port=mosquitto.port) as client:
            await client.subscribe(f"{BASE}/bridge/state")
            async with asyncio.timeout(5):
                async for message in client.messages:
                    assert message.payload == b"offline"  # retained, said on a planned stop
                    break
    finally:
        for process in (run, simulate):
            if process.poll() is None:
                process.kill()
                process.wait(5)
