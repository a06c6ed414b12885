"""Running many simulated chargers: for `ev-gateway simulate`, demos and benchmarks.

`start_simulators` starts N chargers on consecutive ports (or each on a free port when
the first port is 0). `serve_simulators` does that and serves until cancelled.
`python -m gateway.simulator.serve --count 100 --json` prints one JSON line with the
ports once listening and serves until its stdin closes, so a parent process (the
benchmark) can run the chargers in a process of their own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence

from gateway.simulator.modbus_server import SimulatedCharger


async def start_simulators(
    count: int,
    profile: str = "generic",
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    plugged: bool = True,
) -> list[SimulatedCharger]:
    """Start `count` chargers on ports port, port+1, ... (free ports when `port` is 0).

    With `plugged`, each has a 3-phase EV taking up to 16 A. On failure the ones already
    started are stopped again.
    """
    sims: list[SimulatedCharger] = []
    try:
        for i in range(count):
            sim = SimulatedCharger(profile, host=host, port=port + i if port else 0)
            if plugged:
                sim.plug(phases=3, ev_max_current=16.0)
            await sim.start()
            sims.append(sim)
    except BaseException:
        await stop_simulators(sims)
        raise
    return sims


async def stop_simulators(sims: Sequence[SimulatedCharger]) -> None:
    """Stop them all."""
    for sim in sims:
        await sim.stop()


async def serve_simulators(
    profile: str,
    host: str,
    port: int,
    count: int,
    *,
    ready: Callable[[list[SimulatedCharger]], None] | None = None,
    until: asyncio.Future[None] | None = None,
) -> None:
    """Serve `count` chargers until cancelled (or until `until` completes).

    `ready` is called once all listen; by default one line per charger is printed.
    """
    sims = await start_simulators(count, profile, host, port)
    try:
        if ready is not None:
            ready(sims)
        else:
            for sim in sims:
                print(
                    f"{profile} charger simulator on {sim.host}:{sim.port} unit {sim.unit_id}",
                    flush=True,
                )
        await (until if until is not None else asyncio.Event().wait())
    finally:
        await stop_simulators(sims)


async def _serve_until_stdin_closes(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def announce(sims: list[SimulatedCharger]) -> None:
        print(json.dumps({"ports": [s.port for s in sims], "host": args.host}), flush=True)

    def on_stdin() -> None:
        # EOF on stdin: the parent went away or closed the pipe
        if not os.read(stdin, 4096) and not done.done():
            done.set_result(None)

    stdin = sys.stdin.fileno()
    loop.add_reader(stdin, on_stdin)
    try:
        await serve_simulators(
            args.profile,
            args.host,
            args.port,
            args.count,
            ready=announce if args.json else None,
            until=done,
        )
    finally:
        loop.remove_reader(stdin)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m gateway.simulator.serve`: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="generic")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="first port; 0 = free ports")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the ports as one JSON line")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_stdin_closes(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
