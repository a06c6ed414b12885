"""Latency from a proposal published on MQTT to the first Modbus write at a charger.

Runs a real mosquitto on a free port, N simulated chargers (real Modbus TCP servers,
in this process) and `ev-gateway run` as a separate process. Each round publishes a
proposal that changes every charger's limit (alternating 6 A and 8 A per EV) and
records when the first and the last charger received its first write after the
proposal (a raise is ramped, so its first write is the first ramp step; a cut is
written whole), waiting for every charger to settle between rounds. The figure is an
upper bound for "proposal received -> Modbus write issued": it also contains the MQTT
hop to the gateway and the Modbus hop back.

    python -m benchmarks.proposal_latency --chargers 10 100 --rounds 40
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt

from benchmarks._common import VOLTS, percentile, start_mosquitto, write_gateway_config
from gateway.simulator.modbus_server import SimulatedCharger


async def measure(count: int, rounds: int, workdir: Path) -> dict[str, float]:
    broker, broker_port = start_mosquitto(workdir)
    sims = [SimulatedCharger("generic") for _ in range(count)]
    gateway: subprocess.Popen[bytes] | None = None
    try:
        for sim in sims:
            await sim.start()
            sim.plug(phases=3, ev_max_current=16.0)
        config = workdir / f"gateway-{count}.toml"
        write_gateway_config(config, broker_port, [sim.port for sim in sims])
        gateway = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "--log-level",
                "WARNING",
                "run",
                "--config",
                str(config),
            ],
            env={**os.environ},
        )
        first: list[float] = []
        last: list[float] = []
        async with aiomqtt.Client("127.0.0.1", port=broker_port) as client:
            await client.subscribe("ev-gateway/pools/default/system_power_bounds")
            needed = count * 6 * VOLTS * 3
            async with asyncio.timeout(60):
                async for message in client.messages:
                    body = json.loads(message.payload)
                    if (body["inclusion_bounds"] or {}).get("upper", 0) >= needed:
                        break
            for round_index in range(rounds + 2):
                amps = 8.0 if round_index % 2 else 6.0
                marks = [len(sim.writes) for sim in sims]
                sent = time.time()  # the simulators stamp writes with wall time
                payload = json.dumps({"source": "bench", "power": count * amps * VOLTS * 3})
                await client.publish("ev-gateway/pools/default/propose_power", payload, qos=1)
                # Settle: every charger at the new limit (raises are ramped over ticks).
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    if all(sim.current_limit == amps for sim in sims):
                        break
                    await asyncio.sleep(0.005)
                # The first write each charger got after the proposal, whatever its value:
                # a raise starts with a ramp step, a cut is written whole at once.
                times = [sim.writes[mark][0] for sim, mark in zip(sims, marks, strict=True)
                         if len(sim.writes) > mark]  # fmt: skip
                if round_index >= 2 and len(times) == count:  # two rounds warm up
                    first.append((min(times) - sent) * 1000)
                    last.append((max(times) - sent) * 1000)
                await asyncio.sleep(0.3)
        return {
            "chargers": count,
            "rounds": len(first),
            "first_median_ms": statistics.median(first),
            "first_p99_ms": percentile(first, 0.99),
            "all_median_ms": statistics.median(last),
            "all_p99_ms": percentile(last, 0.99),
        }
    finally:
        if gateway is not None:
            gateway.terminate()
            gateway.wait(10)
        for sim in sims:
            await sim.stop()
        broker.terminate()
        broker.wait(5)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chargers", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    print(
        "| chargers | rounds | first write median ms | first write p99 ms "
        "| last charger's first write median ms | p99 ms |"
    )
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.chargers:
            row = await measure(count, args.rounds, Path(tmp))
            print(
                f"| {row['chargers']:.0f} | {row['rounds']:.0f} | {row['first_median_ms']:.1f} "
                f"| {row['first_p99_ms']:.1f} | {row['all_median_ms']:.1f} "
                f"| {row['all_p99_ms']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
