"""Poll CPU benchmark: gateway CPU per charger poll against a bare pymodbus read.

Run from the repository root: `python -m benchmarks.poll_cpu` (about 15 s;
`--profile alfen-eve` for a map read in two requests).

100 simulated chargers (generic profile by default) run in a separate process
(`python -m gateway.simulator.serve --json`), so this process holds only the client
side. Here, one asyncio loop polls all of them concurrently (`asyncio.gather`), in
rounds, two ways over the same registers and the same number of requests:

  adapter  `ModbusTcpCharger.read()`: the planned requests, decoding, range checks,
           state mapping, inclusion bounds, a `ChargerSample`
  bare     `AsyncModbusTcpClient.read_holding_registers()` of the same ranges, no
           decoding (the floor any pymodbus-based gateway pays)

Rounds alternate between the two (warm-up first) so drift and noise hit both alike.
CPU is `time.process_time()` of this process around each round, divided by the
polls in it. The target (docs/design.md, "Targets") is adapter <= 1.5 x bare. Figures only: no
assertion on absolute times, they depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

from pymodbus.client import AsyncModbusTcpClient

from gateway.adapters.modbus.profile import Profile, load_profile
from gateway.adapters.modbus.tcp import ModbusTcpCharger


def start_simulator_process(
    count: int, profile: str
) -> tuple[subprocess.Popen[str], str, list[int]]:
    """The simulators in a child process; returns it, the host and the ports."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.simulator.serve",
            "--profile",
            profile,
            "--count",
            str(count),
            "--json",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise RuntimeError("the simulator process exited before listening")
    announced = json.loads(line)
    return process, str(announced["host"]), [int(p) for p in announced["ports"]]


async def timed_rounds(poll_all: Callable[[], Awaitable[object]], rounds: int) -> list[float]:
    """CPU seconds of this process for each of `rounds` concurrent polls of all chargers."""
    cpu: list[float] = []
    for _ in range(rounds):
        start = time.process_time()
        await poll_all()
        cpu.append(time.process_time() - start)
    return cpu


async def run(name: str, count: int, rounds: int, warmup: int) -> dict[str, float]:
    """Poll `count` chargers `rounds` times each way; returns CPU µs per poll."""
    process, host, ports = start_simulator_process(count, name)
    profile: Profile = load_profile(name)
    blocks = [planned.block for planned in profile.read_plan]
    adapters = [
        ModbusTcpCharger(f"bay-{i}", host, port, None, profile, 16.0, 3, timeout=5.0)
        for i, port in enumerate(ports)
    ]
    bare = [
        AsyncModbusTcpClient(host, port=port, timeout=5.0, retries=0, reconnect_delay=0)
        for port in ports
    ]
    try:
        for client in bare:
            if not await client.connect():
                raise RuntimeError(f"bare client cannot connect to {client}")

        async def bare_read(client: AsyncModbusTcpClient) -> None:
            for block in blocks:
                response = await client.read_holding_registers(
                    block.address, count=block.count, device_id=profile.unit_id
                )
                if response.isError():
                    raise RuntimeError(f"bare read failed: {response}")

        async def poll_adapters() -> object:
            return await asyncio.gather(*(a.read() for a in adapters))

        async def poll_bare() -> object:
            return await asyncio.gather(*(bare_read(c) for c in bare))

        for _ in range(warmup):  # connect, fill caches, settle the simulator process
            await poll_adapters()
            await poll_bare()
        adapter_cpu: list[float] = []
        bare_cpu: list[float] = []
        for _ in range(rounds):
            adapter_cpu += await timed_rounds(poll_adapters, 1)
            bare_cpu += await timed_rounds(poll_bare, 1)
    finally:
        for adapter in adapters:
            await adapter.close()
        for client in bare:
            client.close()
        assert process.stdin is not None
        process.stdin.close()  # the simulator process stops at EOF
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
    per_poll = 1e6 / count
    return {
        "adapter_mean": statistics.fmean(adapter_cpu) * per_poll,
        "adapter_median": statistics.median(adapter_cpu) * per_poll,
        "bare_mean": statistics.fmean(bare_cpu) * per_poll,
        "bare_median": statistics.median(bare_cpu) * per_poll,
        "requests_per_poll": float(len(blocks)),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description="gateway CPU per charger poll vs bare pymodbus")
    parser.add_argument("--chargers", type=int, default=100)
    parser.add_argument("--profile", default="generic", choices=["generic", "alfen-eve"])
    parser.add_argument("--rounds", type=int, default=300, help="timed rounds per way")
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    started = time.monotonic()
    figures = asyncio.run(run(args.profile, args.chargers, args.rounds, args.warmup))
    ratio_mean = figures["adapter_mean"] / figures["bare_mean"]
    ratio_median = figures["adapter_median"] / figures["bare_median"]
    print(
        f"poll CPU benchmark: {args.chargers} chargers ({args.profile} profile, "
        f"{figures['requests_per_poll']:.0f} request(s) per poll), {args.rounds} rounds per way"
    )
    print(
        f"  adapter read():         {figures['adapter_mean']:8.1f} µs CPU per poll "
        f"(median round {figures['adapter_median']:.1f})"
    )
    print(
        f"  bare pymodbus read:     {figures['bare_mean']:8.1f} µs CPU per poll "
        f"(median round {figures['bare_median']:.1f})"
    )
    print(f"  ratio adapter / bare:   {ratio_mean:8.2f} (median {ratio_median:.2f}; target <= 1.5)")
    print(f"  wall time {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
