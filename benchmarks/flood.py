"""Proposal flood: does telemetry keep flowing, memory stay flat and SIGTERM still work?

Starts mosquitto on a free port, simulated chargers as a process of their own
(`python -m gateway.cli simulate`), and the daemon as another (`python -m gateway.cli
run`). Then `--sources` clients (in `--workers` processes) each publish `--rate` valid
proposals per second for `--duration` seconds, with random powers up to the pool's
rated power, while a monitor records the gateway's telemetry. Printed:

- the longest gap between `pools/{pool}/power` messages during the flood
  (target <= 2 x resampling_period),
- the time after the flood until telemetry is normal again: messages fresh (payload
  timestamp within 0.5 s of arrival) and gaps below 1.5 periods (target <= 2 s),
- the daemon's RSS growth, from /proc (target <= 10 MiB),
- the highest sum of commanded limits per grid phase against `phase_limit`,
- replies received by status, against proposals sent, and log lines written,
- the time from SIGTERM (sent during a second, short flood) to exit, and whether
  `offline` was published (target <= 5 s).

    python -m benchmarks.flood                      # 10 sources x 500/s for 30 s
    python -m benchmarks.flood --duration 10 --rate 200
    python -m benchmarks.flood --source /path/to/other/checkout   # another version
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks.proposal_latency import free_port, start_mosquitto

BASE = "ev-gateway"
POOL = "default"
VOLTS = 230.0
MAX_CURRENT = 16.0


# ---------------------------------------------------------------- flood clients


def flood_worker(
    port: int,
    sources: list[str],
    rate: float,
    duration: float,
    rated: float,
    qos: int,
    start: MpEvent,
    sent: Any,
) -> None:
    """Publish `rate` proposals/s per source for `duration` s, paced every 10 ms."""
    topic = f"{BASE}/pools/{POOL}/propose_power"
    clients = []
    for source in sources:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"flood-{source}")
        client.max_queued_messages_set(0)
        client.connect("127.0.0.1", port)
        client.loop_start()
        clients.append((source, client))
    start.wait()
    begin = time.monotonic()
    count = 0
    rng = random.Random(sources[0])
    while (elapsed := time.monotonic() - begin) < duration:
        due = int(elapsed * rate)
        for source, client in clients:
            for n in range(count, due):
                body = {
                    "source": source,
                    "priority": int(source.rsplit("-", 1)[1]),
                    "power": round(rng.uniform(0, rated)),
                    "transaction": n,
                }
                client.publish(topic, json.dumps(body), qos=qos)
        count = max(count, due)
        time.sleep(0.01)
    for _, client in clients:
        client.disconnect()
        client.loop_stop()
    with sent.get_lock():
        sent.value += count * len(clients)


def start_flood(
    port: int, args: argparse.Namespace, duration: float, rated: float
) -> tuple[list[Any], MpEvent, Any]:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    sent = context.Value("q", 0)
    names = [f"flood-{i}" for i in range(args.sources)]
    groups = [names[i :: args.workers] for i in range(args.workers)]
    workers = [
        context.Process(
            target=flood_worker,
            args=(port, group, args.rate, duration, rated, args.qos, start, sent),
            daemon=True,
        )
        for group in groups
        if group
    ]
    for worker in workers:
        worker.start()
    return workers, start, sent


def reply_counter(port: int, ready: MpEvent, stop: MpEvent, results: Any) -> None:
    """Count the replies by status, in a process of its own (they come by thousands)."""
    counts: dict[str, int] = {}

    def on_message(client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        status = message.payload.split(b'"status":"', 1)[-1].split(b'"', 1)[0].decode()
        counts[status] = counts.get(status, 0) + 1

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="flood-replies")
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe(f"{BASE}/pools/{POOL}/propose_power/response", qos=1)
    client.loop_start()
    ready.set()
    stop.wait()
    client.loop_stop()
    results.put(counts)


# ---------------------------------------------------------------- monitor


@dataclass
class Monitor:
    """Everything the gateway publishes that the figures need, with arrival times."""

    power: list[tuple[float, float]] = field(default_factory=list)  # (arrival, payload ts)
    max_commanded: float = 0.0
    max_reported: float = 0.0
    limits: dict[str, float] = field(default_factory=dict)
    bridge_state: list[tuple[float, bytes]] = field(default_factory=list)
    upper_bound: float = 0.0

    async def run(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            arrival = time.time()
            topic = str(message.topic)
            payload = message.payload if isinstance(message.payload, bytes) else b""
            if topic == f"{BASE}/pools/{POOL}/power":
                stamp = json.loads(payload)["timestamp"].replace("Z", "+00:00")
                self.power.append((arrival, datetime.fromisoformat(stamp).timestamp()))
            elif topic.endswith("/power_distribution_results"):
                limits = json.loads(payload).get("current_limits") or {}
                commanded = sum(v or 0.0 for v in limits.values())
                self.max_commanded = max(self.max_commanded, commanded)
            elif topic.startswith(f"{BASE}/chargers/"):
                limit = json.loads(payload).get("current_limit")
                self.limits[topic] = limit or 0.0
                self.max_reported = max(self.max_reported, sum(self.limits.values()))
            elif topic.endswith("/system_power_bounds"):
                inclusion = json.loads(payload).get("inclusion_bounds") or {}
                self.upper_bound = inclusion.get("upper") or 0.0
            elif topic == f"{BASE}/bridge/state":
                self.bridge_state.append((arrival, payload))

    def longest_gap(self, start: float, end: float) -> float:
        times = [start] + [a for a, _ in self.power if start < a < end] + [end]
        return max(b - a for a, b in itertools.pairwise(times))

    def normal_after(self, end: float, period: float, horizon: float) -> float | None:
        """Seconds after `end` from which every power message is fresh and on time."""
        after = [(a, ts) for a, ts in self.power if a >= end and a <= end + horizon]
        for i, (arrival, _) in enumerate(after):
            rest = after[i:]
            fresh = all(a - ts <= 0.5 for a, ts in rest)
            gaps = [b[0] - a[0] for a, b in itertools.pairwise(rest)]
            if fresh and all(g <= 1.5 * period for g in gaps) and len(rest) >= 3:
                return max(0.0, arrival - end - period)
        return None


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ---------------------------------------------------------------- the run


def write_config(path: Path, broker_port: int, sim_port: int, args: argparse.Namespace) -> None:
    lines = [
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\n',
        f"[power]\nresampling_period = {args.period}\nmax_data_age = 5.0\n",
        "[homeassistant]\nenabled = false\n",
    ]
    for index in range(args.chargers):
        lines.append(
            f'[[chargers]]\nid = "c{index}"\nadapter = "modbus"\nprofile = "generic"\n'
            f'host = "127.0.0.1"\nport = {sim_port + index}\nmax_current = {MAX_CURRENT}\n'
        )
    ids = ", ".join(f'"c{i}"' for i in range(args.chargers))
    lines.append(f'[[pools]]\nname = "{POOL}"\nchargers = [{ids}]\nphase_limit = {args.fuse}\n')
    path.write_text("\n".join(lines))


async def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def wait_listening(first_port: int, count: int, timeout: float = 30.0) -> None:
    """Until every simulated charger accepts TCP connections."""
    for port in range(first_port, first_port + count):
        deadline = time.monotonic() + timeout
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"simulated charger on {port} did not listen") from None
                await asyncio.sleep(0.1)
                continue
            writer.close()
            break


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    broker, broker_port = start_mosquitto(workdir)
    env = {**os.environ, "PYTHONPATH": str(args.source)}
    sim_port = free_port()
    sims = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "simulate", "--port", str(sim_port),
         "--count", str(args.chargers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=args.source,
    )  # fmt: skip
    config = workdir / "gateway.toml"
    write_config(config, broker_port, sim_port, args)
    log_path = workdir / "gateway.log"
    rated = args.chargers * MAX_CURRENT * 3 * VOLTS
    monitor = Monitor()
    figures: dict[str, Any] = {}
    daemon: subprocess.Popen[bytes] | None = None
    try:
        await wait_listening(sim_port, args.chargers)
        with log_path.open("wb") as log_file:
            profile = ["-m", "cProfile", "-o", str(args.profile)] if args.profile else []
            daemon = subprocess.Popen(
                [sys.executable, *profile, "-m", "gateway.cli", "run", "--config", str(config)],
                stdout=log_file, stderr=log_file, env=env, cwd=args.source,
            )  # fmt: skip
        async with aiomqtt.Client("127.0.0.1", port=broker_port) as client:
            for topic in (
                f"{BASE}/pools/{POOL}/power",
                f"{BASE}/pools/{POOL}/power_distribution_results",
                f"{BASE}/pools/{POOL}/system_power_bounds",
                f"{BASE}/chargers/+/state",
                f"{BASE}/bridge/state",
            ):
                await client.subscribe(topic)
            watcher = asyncio.create_task(monitor.run(client))
            context = multiprocessing.get_context("spawn")
            counter_ready, counter_stop, counted = context.Event(), context.Event(), context.Queue()
            counter = context.Process(
                target=reply_counter,
                args=(broker_port, counter_ready, counter_stop, counted),
                daemon=True,
            )
            counter.start()
            await asyncio.to_thread(counter_ready.wait, 30)
            await wait_until(lambda: len(monitor.power) >= 3, 30, "telemetry")
            await wait_until(lambda: monitor.upper_bound > 0, 30, "EVs ready to charge")
            await asyncio.sleep(2.0)
            rss_before = rss_mib(daemon.pid)
            lines_before = len(log_path.read_bytes().splitlines())
            workers, start, sent = start_flood(broker_port, args, args.duration, rated)
            await asyncio.sleep(2.0)  # clients connected
            start.set()
            t0 = time.time()
            rss_peak = rss_before
            while any(w.is_alive() for w in workers):
                rss_peak = max(rss_peak, rss_mib(daemon.pid))
                await asyncio.sleep(0.5)
            t1 = min(time.time(), t0 + args.duration + 0.5)
            await asyncio.sleep(args.recovery)
            rss_after = rss_mib(daemon.pid)
            counter_stop.set()
            replies = await asyncio.to_thread(counted.get, True, 30)
            figures.update(
                sent=sent.value,
                replies=replies,
                longest_gap=monitor.longest_gap(t0, t1),
                normal_after=monitor.normal_after(t1, args.period, args.recovery),
                rss_before=rss_before,
                rss_peak_growth=rss_peak - rss_before,
                rss_growth=rss_after - rss_before,
                max_commanded=monitor.max_commanded,
                max_reported=monitor.max_reported,
                log_lines=len(log_path.read_bytes().splitlines()) - lines_before,
            )
            # SIGTERM in the middle of a second, short flood
            workers, start, _ = start_flood(broker_port, args, 4.0, rated)
            await asyncio.sleep(2.0)
            start.set()
            await asyncio.sleep(2.0)
            states_before = len(monitor.bridge_state)
            signalled = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(daemon.wait, 30)
                figures["sigterm_exit"] = time.monotonic() - signalled
            except subprocess.TimeoutExpired:
                figures["sigterm_exit"] = None
            await asyncio.sleep(1.0)
            figures["offline"] = any(
                p == b"offline" for _, p in monitor.bridge_state[states_before:]
            )
            for worker in workers:
                worker.join(10)
            watcher.cancel()
    finally:
        for process in (daemon, sims, broker):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(5)
    return figures


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    gap, period = figures["longest_gap"], args.period
    normal = figures["normal_after"]
    gap_ok = verdict(gap <= 2 * period)
    normal_ok = verdict(normal is not None and normal <= 2)
    peak = figures["rss_peak_growth"]
    exit_s = figures["sigterm_exit"]
    replies = figures["replies"]
    print(
        f"flood: {args.sources} sources x {args.rate:g}/s for {args.duration:g} s, "
        f"QoS {args.qos}, {args.chargers} chargers, source {args.source}"
    )
    print(f"  proposals sent                 {figures['sent']}")
    print(f"  replies received               {sum(replies.values())} {replies}")
    print(f"  longest power gap in flood     {gap:.2f} s  (<= {2 * period:g} s: {gap_ok})")
    shown = "never" if normal is None else f"{normal:.2f} s"
    print(f"  telemetry normal after flood   {shown}  (<= 2 s: {normal_ok})")
    growth = figures["rss_growth"]
    print(
        f"  RSS growth                     {growth:.1f} MiB after, {peak:.1f} MiB peak "
        f"(from {figures['rss_before']:.1f} MiB; <= 10 MiB: {verdict(peak <= 10)})"
    )
    fuse = args.fuse
    print(
        f"  highest commanded per phase    {figures['max_commanded']:.1f} A "
        f"(phase_limit {fuse:g} A: {verdict(figures['max_commanded'] <= fuse + 1e-6)}); "
        "sum of last-polled limits "
        f"{figures['max_reported']:.1f} A (polls up to a poll interval apart, not a snapshot)"
    )
    print(f"  daemon log lines in the flood  {figures['log_lines']}")
    shown = "did not exit in 30 s" if exit_s is None else f"{exit_s:.2f} s"
    print(
        f"  SIGTERM to exit                {shown}, offline published: {figures['offline']} "
        f"(<= 5 s: {verdict(exit_s is not None and exit_s <= 5 and figures['offline'])})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=10)
    parser.add_argument("--rate", type=float, default=500.0, help="proposals/s per source")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2, help="flood processes")
    parser.add_argument("--qos", type=int, default=1, choices=[0, 1])
    parser.add_argument("--chargers", type=int, default=4)
    parser.add_argument("--fuse", type=float, default=40.0, help="pool phase_limit (A)")
    parser.add_argument("--period", type=float, default=1.0, help="resampling_period (s)")
    parser.add_argument("--recovery", type=float, default=10.0, help="s observed after")
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--profile", type=Path, help="write the daemon's cProfile here")
    parser.add_argument("--workdir", type=Path, help="keep configs and the daemon log here")
    args = parser.parse_args()
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        figures = asyncio.run(run(args, args.workdir))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            figures = asyncio.run(run(args, Path(tmp)))
    report(figures, args)


if __name__ == "__main__":
    main()
