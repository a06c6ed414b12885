"""The whole daemon at fleet scale, measured from outside.

    python -m benchmarks.fleet_scale --chargers 100 1000 --window 30 --rounds 30

For each N, in one run:
- mosquitto on a free port;
- N simulated generic-profile chargers served by separate processes (`serve` mode of
  this module: up to `--per-host` chargers each, on free ports; they count the read
  requests they answer and stamp every setpoint write with the wall clock);
- `python -m gateway.cli run --config CFG` as its own process, polling all of them at
  `--poll-interval` (1 s);
- a bare pymodbus asyncio loop (`bare` mode of this module) as its own process, one
  task per charger reading the same registers from the same simulators at the same
  interval: the floor any pymodbus-based gateway pays.

After `--warmup` seconds, the daemon's CPU is read from /proc/<pid>/stat over
`--window` seconds, and its polls are the read requests the simulators answered in
that window (the daemon is the only client then) per read of the generic map. Then the daemon
is paused (SIGSTOP) and the bare loop polls the same simulators for `--warmup` plus a
window of its own, counting its polls; then the daemon goes on (SIGCONT). Taking turns,
the simulators serve one poller at a time (this 2-core machine cannot serve 2,000 polls
a second and run both pollers too). Printed: µs CPU per poll for both, their ratio,
the daemon's achieved poll rate (polls per charger-second), its share of a core, and
the simulators' µs CPU per request (what limits how many chargers one machine hosts).

Then `--rounds` proposals alternate every EV between 6 A and
8 A; for each, the simulators' first write after the proposal gives "proposal published
-> first write at a charger" and "-> last charger's first write" (ms, median and p99;
a raise starts with a ramp step, a cut is written whole). The daemon keeps polling all
chargers meanwhile. Last, the daemon's RSS; the RSS per charger is
(RSS at N - RSS at `--base` chargers) / (N - base), the base daemon measured the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from benchmarks._common import (
    VOLTS,
    cpu_seconds,
    percentile,
    rss_kib,
    start_mosquitto,
    write_gateway_config,
)
from gateway.adapters.modbus.profile import load_profile

PROPOSE = "ev-gateway/pools/default/propose_power"
BOUNDS = "ev-gateway/pools/default/system_power_bounds"


# --------------------------------------------------------------------- child: simulators
async def serve_mode(count: int) -> None:
    """Serve `count` plugged simulators; answer JSON commands on stdin, one per line."""
    from gateway.simulator.serve import start_simulators, stop_simulators

    sims = await start_simulators(count, "generic")
    reads = _count_reads(sims)
    marks = [0] * len(sims)
    print(json.dumps({"ports": [s.port for s in sims]}), flush=True)
    reader = await _stdin_reader()
    try:
        while line := await reader.readline():
            command = json.loads(line)
            answer: dict[str, Any]
            if command["cmd"] == "stats":
                answer = {"reads": reads[0], "writes": sum(len(s.writes) for s in sims)}
            elif command["cmd"] == "mark":
                marks = [len(s.writes) for s in sims]
                answer = {}
            elif command["cmd"] == "at":
                answer = {"count": sum(1 for s in sims if s.current_limit == command["amps"])}
            else:  # "first": each charger's first write after the mark
                pairs = zip(sims, marks, strict=True)
                answer = {"times": [s.writes[m][0] for s, m in pairs if len(s.writes) > m]}
            print(json.dumps(answer), flush=True)
    finally:
        await stop_simulators(sims)


def _count_reads(sims: Sequence[Any]) -> list[int]:
    """A counter (one-element list) of the read requests (FC 3/4) all `sims` receive."""
    reads = [0]
    for sim in sims:

        def record(pdu: Any, record_request: Any = sim.record_request) -> None:
            if int(pdu.function_code) in (3, 4):
                reads[0] += 1
            record_request(pdu)

        sim.record_request = record
    return reads


# --------------------------------------------------------------------- child: bare loop
async def bare_mode(ports: Sequence[int], interval: float) -> None:
    """One task per charger reading the generic read plan every `interval` s, while
    told to ("go" ... "stop" on stdin); answers each command with its poll count."""
    from pymodbus.client import AsyncModbusTcpClient

    profile = load_profile("generic")
    blocks = [planned.block for planned in profile.read_plan]
    polls = 0
    going = asyncio.Event()
    clients = [AsyncModbusTcpClient("127.0.0.1", port=p, timeout=5.0, retries=0) for p in ports]
    for client in clients:
        await client.connect()

    async def poll(client: AsyncModbusTcpClient) -> None:
        nonlocal polls
        loop = asyncio.get_running_loop()
        while True:
            await going.wait()
            started = loop.time()
            for block in blocks:
                await client.read_holding_registers(
                    block.address, count=block.count, device_id=profile.unit_id
                )
            polls += 1
            await asyncio.sleep(max(0.0, interval - (loop.time() - started)))

    tasks = [asyncio.create_task(poll(client)) for client in clients]
    print(json.dumps({"connected": sum(1 for c in clients if c.connected)}), flush=True)
    reader = await _stdin_reader()
    while line := await reader.readline():
        command = json.loads(line)["cmd"]
        if command == "go":
            going.set()
        elif command == "stop":
            going.clear()
        print(json.dumps({"polls": polls}), flush=True)
    for task in tasks:
        task.cancel()


async def _stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


# --------------------------------------------------------------------- parent
@dataclass
class Child:
    """A child process talking JSON lines on stdin/stdout."""

    process: asyncio.subprocess.Process
    first: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def start(cls, *args: str) -> Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.fleet_scale", *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=2**24,
        )  # fmt: skip
        child = cls(process)
        child.first = await child._read()
        return child

    async def ask(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()
        return await self._read()

    async def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 600)
        if not line:
            raise RuntimeError("a benchmark child process exited")
        result: dict[str, Any] = json.loads(line)
        return result

    async def stop(self) -> None:
        if self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def sum_stats(hosts: Sequence[Child]) -> tuple[int, int]:
    answers = await asyncio.gather(*(h.ask(cmd="stats") for h in hosts))
    return sum(a["reads"] for a in answers), sum(a["writes"] for a in answers)


async def wait_all_working(count: int, broker_port: int, timeout: float) -> None:
    """Until the pool's bounds show every charger's EV can take 6 A on 3 phases."""
    needed = count * 6 * VOLTS * 3
    async with aiomqtt.Client("127.0.0.1", port=broker_port) as client:
        await client.subscribe(BOUNDS)
        async with asyncio.timeout(timeout):
            async for message in client.messages:
                body = json.loads(message.payload)
                if (body["inclusion_bounds"] or {}).get("upper", 0) >= needed:
                    return


async def wait_polling(
    hosts: Sequence[Child], count: int, interval: float, timeout: float = 120.0
) -> None:
    """Until the simulators answer at least 90 % of one poll per charger-second."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before, _ = await sum_stats(hosts)
        await asyncio.sleep(2.0)
        after, _ = await sum_stats(hosts)
        if after - before >= 0.9 * 2.0 * count / interval:
            return
    raise RuntimeError("the daemon did not get back to polling every charger")


async def latency_rounds(
    hosts: Sequence[Child], count: int, rounds: int, broker_port: int
) -> tuple[list[float], list[float]]:
    """Proposal -> first write at any charger / at the last charger, ms per round."""
    first: list[float] = []
    last: list[float] = []
    async with aiomqtt.Client("127.0.0.1", port=broker_port) as client:
        for index in range(rounds + 2):
            amps = 8.0 if index % 2 else 6.0
            await asyncio.gather(*(h.ask(cmd="mark") for h in hosts))
            sent = time.time()  # the simulators stamp writes with wall time
            payload = json.dumps({"source": "bench", "power": count * amps * VOLTS * 3})
            await client.publish(PROPOSE, payload, qos=1)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                answers = await asyncio.gather(*(h.ask(cmd="at", amps=amps) for h in hosts))
                if sum(a["count"] for a in answers) == count:
                    break
                await asyncio.sleep(0.05)
            answers = await asyncio.gather(*(h.ask(cmd="first") for h in hosts))
            times = [t for a in answers for t in a["times"]]
            if index >= 2 and len(times) == count:  # two rounds warm up
                first.append((min(times) - sent) * 1000)
                last.append((max(times) - sent) * 1000)
            await asyncio.sleep(0.3)
    return first, last


async def start_hosts(count: int, per_host: int) -> tuple[list[Child], list[int]]:
    sizes = [min(per_host, count - start) for start in range(0, count, per_host)]
    hosts = await asyncio.gather(*(Child.start("serve", "--count", str(n)) for n in sizes))
    ports = [p for h in hosts for p in h.first["ports"]]
    return list(hosts), ports


NO_UVLOOP = "import sys; sys.modules['uvloop'] = None; from gateway.cli import main; main()"
"""The daemon's entry point with uvloop hidden (an import of it fails)."""


async def start_daemon(
    config: Path, prefix: str, uvloop: bool = True
) -> asyncio.subprocess.Process:
    """The daemon, its log in a file next to its config (`prefix`: e.g. a profiler)."""
    log = config.with_suffix(".log").open("wb")
    entry = ["-m", "gateway.cli"] if uvloop else ["-c", NO_UVLOOP]
    return await asyncio.create_subprocess_exec(
        *prefix.split(), sys.executable, *entry, "--log-level", "WARNING", "run",
        "--config", str(config), env={**os.environ}, stderr=log,
    )  # fmt: skip


async def stop_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


async def measure(count: int, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    """Every figure for `count` chargers (see the module docstring)."""
    broker, broker_port = start_mosquitto(workdir)
    hosts: list[Child] = []
    bare: Child | None = None
    daemon: asyncio.subprocess.Process | None = None
    figures: dict[str, float] = {"chargers": count}
    try:
        hosts, ports = await start_hosts(count, args.per_host)
        config = workdir / f"gateway-{count}.toml"
        write_gateway_config(
            config, broker_port, ports, poll_interval=args.poll_interval, extra=args.config_extra
        )
        daemon = await start_daemon(config, args.daemon_prefix, not args.no_uvloop)
        await wait_all_working(count, broker_port, timeout=120 + count / 10)
        if args.window > 0:
            loop = ["--uvloop"] if args.bare_uvloop else []
            bare = await Child.start("bare", "--interval", str(args.poll_interval), *loop,
                                     "--ports", ",".join(map(str, ports)))  # fmt: skip
        await asyncio.sleep(args.warmup)
        if bare is not None:
            figures.update(await cpu_windows(hosts, bare, daemon.pid, count, args))
            await bare.stop()
            bare = None
            await wait_polling(
                hosts, count, args.poll_interval
            )  # reads cut by the pause back off a while
            await asyncio.sleep(args.warmup)
        if args.rounds > 0:
            first, last = await latency_rounds(hosts, count, args.rounds, broker_port)
            figures["rounds"] = len(first)
            if first:
                figures["first_p50"] = statistics.median(first)
                figures["first_p99"] = percentile(first, 0.99)
                figures["last_p50"] = statistics.median(last)
                figures["last_p99"] = percentile(last, 0.99)
        figures["rss_kib"] = rss_kib(daemon.pid)
        return figures
    finally:
        if bare is not None:
            await bare.stop()
        if daemon is not None:
            await stop_process(daemon)
        for host in hosts:
            await host.stop()
        broker.terminate()
        broker.wait(5)


async def cpu_windows(
    hosts: Sequence[Child], bare: Child, daemon_pid: int, count: int, args: argparse.Namespace
) -> dict[str, float]:
    """CPU per poll of the daemon, then of the bare loop, over one window each.

    The two take turns on the same simulators (the daemon is stopped with SIGSTOP
    while the bare loop polls), so the simulators serve one poller at a time: this
    machine cannot serve 2 x 1,000 polls a second and run both pollers as well.
    """
    window = args.window
    host_pids = [h.process.pid for h in hosts]
    reads0, writes0 = await sum_stats(hosts)
    daemon0, sims0, wall0 = cpu_seconds(daemon_pid), _cpu(host_pids), time.monotonic()
    await asyncio.sleep(window)
    daemon1, sims1, wall1 = cpu_seconds(daemon_pid), _cpu(host_pids), time.monotonic()
    reads1, writes1 = await sum_stats(hosts)
    daemon_requests = (reads1 - reads0) + (writes1 - writes0)
    daemon_polls = (reads1 - reads0) / len(load_profile("generic").read_plan)
    os.kill(daemon_pid, signal.SIGSTOP)
    try:
        await bare.ask(cmd="go")
        await asyncio.sleep(args.warmup)
        bare_pid = bare.process.pid
        polls0 = (await bare.ask(cmd="polls"))["polls"]
        bare0, wall2 = cpu_seconds(bare_pid), time.monotonic()
        await asyncio.sleep(window)
        bare1, wall3 = cpu_seconds(bare_pid), time.monotonic()
        polls1 = (await bare.ask(cmd="stop"))["polls"]
    finally:
        os.kill(daemon_pid, signal.SIGCONT)
    bare_polls = polls1 - polls0
    daemon_us = (daemon1 - daemon0) * 1e6 / max(daemon_polls, 1)
    bare_us = (bare1 - bare0) * 1e6 / max(bare_polls, 1)
    return {
        "daemon_us": daemon_us,
        "bare_us": bare_us,
        "ratio": daemon_us / bare_us,
        "daemon_rate": daemon_polls / (wall1 - wall0) / count,
        "bare_rate": bare_polls / (wall3 - wall2) / count,
        "daemon_core": (daemon1 - daemon0) / (wall1 - wall0),
        "sim_us": (sims1 - sims0) * 1e6 / max(daemon_requests, 1),
    }


def _cpu(pids: Sequence[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


async def main_async(args: argparse.Namespace) -> None:
    rows: list[dict[str, float]] = []
    print(
        f"daemon loop: {'asyncio' if args.no_uvloop else 'uvloop when installed'}; bare loop: "
        f"{'uvloop' if args.bare_uvloop else 'asyncio'}; [mqtt] extra: {args.config_extra!r}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        base_rss: float | None = None
        if args.base:
            quick = argparse.Namespace(**{**vars(args), "window": 0, "rounds": 0})
            base_rss = (await measure(args.base, quick, Path(tmp)))["rss_kib"]
            print(f"daemon RSS at {args.base} chargers: {base_rss / 1024:.1f} MiB", flush=True)
        for count in args.chargers:
            row = await measure(count, args, Path(tmp))
            if base_rss is not None and count > args.base:
                row["rss_per_charger"] = (row["rss_kib"] - base_rss) / (count - args.base)
            rows.append(row)
            print(format_row(row), flush=True)
    print()
    print("| N | daemon µs CPU/poll | bare loop µs/poll | ratio | daemon core share | "
          "poll rate (Hz) | simulators µs/request | first write p50 / p99 ms | "
          "last write p50 / p99 ms | "
          "RSS MiB | KiB per extra charger |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(table_row(row))


def _get(row: dict[str, float], key: str, fmt: str) -> str:
    return format(row[key], fmt) if key in row else "—"


def format_row(row: dict[str, float]) -> str:
    return f"N={row['chargers']:.0f}: " + ", ".join(
        f"{key}={value:.3g}" for key, value in row.items() if key != "chargers"
    )


def table_row(row: dict[str, float]) -> str:
    return (
        f"| {row['chargers']:.0f} | {_get(row, 'daemon_us', '.0f')} "
        f"| {_get(row, 'bare_us', '.0f')} "
        f"| {_get(row, 'ratio', '.2f')} | {_get(row, 'daemon_core', '.0%')} "
        f"| {_get(row, 'daemon_rate', '.3f')} | {_get(row, 'sim_us', '.0f')} "
        f"| {_get(row, 'first_p50', '.1f')} / {_get(row, 'first_p99', '.1f')} "
        f"| {_get(row, 'last_p50', '.1f')} / {_get(row, 'last_p99', '.1f')} "
        f"| {row['rss_kib'] / 1024:.1f} | {_get(row, 'rss_per_charger', '.1f')} |"
    )


def _uvloop() -> Any:
    import uvloop

    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode")
    serve = sub.add_parser("serve", help="(internal) serve simulators for the benchmark")
    serve.add_argument("--count", type=int, required=True)
    bare = sub.add_parser("bare", help="(internal) the bare pymodbus loop")
    bare.add_argument("--ports", required=True)
    bare.add_argument("--interval", type=float, default=1.0)
    bare.add_argument("--uvloop", action="store_true")
    parser.add_argument("--chargers", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--window", type=float, default=30.0, help="CPU window, s (0: skip)")
    parser.add_argument("--warmup", type=float, default=5.0, help="s before the window")
    parser.add_argument("--rounds", type=int, default=30, help="latency rounds (0: skip)")
    parser.add_argument("--base", type=int, default=10, help="small N for RSS (0: skip)")
    parser.add_argument("--per-host", type=int, default=500, help="chargers per simulator process")
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument(
        "--daemon-prefix",
        default="",
        help="command put before the daemon's, e.g. 'py-spy record -o prof.svg --' "
        "(its CPU figures are then the prefix's)",
    )
    parser.add_argument("--no-uvloop", action="store_true", help="daemon on asyncio's loop")
    parser.add_argument("--bare-uvloop", action="store_true", help="bare loop on uvloop")
    parser.add_argument("--config-extra", default="", help="TOML lines added to [mqtt]")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        if args.mode == "serve":
            asyncio.run(serve_mode(args.count))
        elif args.mode == "bare":
            ports = [int(p) for p in args.ports.split(",")]
            with asyncio.Runner(loop_factory=_uvloop() if args.uvloop else None) as runner:
                runner.run(bare_mode(ports, args.interval))
        else:
            asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
