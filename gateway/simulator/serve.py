"""Running many simulated chargers: for `ev-gateway simulate`, demos and benchmarks.

A `SimulatorSpec` says what to serve: a profile's register map on an address, with or
without an EV (`EvSpec`: its phases and the most current it draws). `specs_for_config`
derives them from a gateway config, so `simulate --config FILE` serves every Modbus TCP
charger of FILE on 127.0.0.1 at its port with an EV that matches its wiring.
`start_specs` / `serve_specs` start them (and stop them again on failure);
`start_simulators` / `serve_simulators` are the same for N chargers of one profile.

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
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.config import GatewayConfig
from gateway.errors import EX_CONFIG, PortUnavailable, UserError
from gateway.simulator.layouts import LAYOUTS
from gateway.simulator.modbus_server import SimulatedCharger
from gateway.simulator.rtu_layouts import RTU_LAYOUTS

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class EvSpec:
    """The EV plugged into a simulated charger."""

    phases: int = 3  # 1, 2 or 3
    max_current: float = 16.0  # A per phase at most


@dataclass(frozen=True, slots=True)
class SimulatorSpec:
    """One simulated charger: register map, address, unit id (None: the profile's), EV."""

    profile: str
    host: str
    port: int  # 0: a free port
    unit_id: int | None
    ev: EvSpec | None
    label: str = ""


def simulator_profiles() -> list[str]:
    """Every profile the simulator can serve, sorted."""
    return sorted({*LAYOUTS, *RTU_LAYOUTS})


def specs_for_config(config: GatewayConfig) -> list[SimulatorSpec]:
    """A simulator for each Modbus TCP charger of `config`, on loopback at its port.

    The EV charges on `ev_phases` phases when set, else on as many as the charger is
    wired to (`phases`), at up to the charger's `max_current`.
    """
    specs: list[SimulatorSpec] = []
    for charger in config.chargers:
        if charger.adapter != "modbus" or charger.serial is not None or charger.profile is None:
            continue
        same_port = [s.label for s in specs if s.port == charger.port]
        if same_port:
            raise UserError(
                f"chargers {same_port[0]} and {charger.id} both use port {charger.port}: the "
                "simulator serves one charger per port on 127.0.0.1; give them distinct ports",
                EX_CONFIG,
            )
        phases = charger.ev_phases or len(charger.phases)
        specs.append(
            SimulatorSpec(
                charger.profile,
                LOOPBACK,
                charger.port,
                charger.unit_id,
                EvSpec(phases, charger.max_current),
                label=charger.id,
            )
        )
    return specs


def check_port_free(host: str, port: int) -> None:
    """Raise `PortUnavailable` (one line) when nothing could listen on host:port."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise PortUnavailable(f"cannot listen on {host}:{port}: {reason.lower()}") from None


async def start_specs(specs: Sequence[SimulatorSpec]) -> list[SimulatedCharger]:
    """Start one simulator per spec; on failure the ones already started are stopped."""
    sims: list[SimulatedCharger] = []
    try:
        for spec in specs:
            check_port_free(spec.host, spec.port)
            sim = SimulatedCharger(
                spec.profile, host=spec.host, port=spec.port, unit_id=spec.unit_id
            )
            if spec.ev is not None:
                sim.plug(phases=spec.ev.phases, ev_max_current=spec.ev.max_current)
            try:
                await sim.start()
            except RuntimeError:  # pymodbus: "Could not start listen"
                raise PortUnavailable(f"cannot listen on {spec.host}:{spec.port}") from None
            sims.append(sim)
    except BaseException:
        await stop_simulators(sims)
        raise
    return sims


async def start_simulators(
    count: int,
    profile: str = "generic",
    host: str = LOOPBACK,
    port: int = 0,
    *,
    plugged: bool = True,
) -> list[SimulatedCharger]:
    """Start `count` chargers on ports port, port+1, ... (free ports when `port` is 0).

    With `plugged`, each has a 3-phase EV taking up to 16 A.
    """
    ev = EvSpec() if plugged else None
    specs = [SimulatorSpec(profile, host, port + i if port else 0, None, ev) for i in range(count)]
    return await start_specs(specs)


async def stop_simulators(sims: Sequence[SimulatedCharger]) -> None:
    """Stop them all."""
    for sim in sims:
        await sim.stop()


def describe(spec: SimulatorSpec, sim: SimulatedCharger) -> str:
    """One line saying what is served where."""
    ev = (
        "no EV" if spec.ev is None else f"{spec.ev.phases}-phase EV up to {spec.ev.max_current:g} A"
    )
    name = f"{spec.label}: " if spec.label else ""
    return (
        f"{name}{spec.profile} charger simulator on {sim.host}:{sim.port} unit {sim.unit_id}, {ev}"
    )


async def serve_specs(
    specs: Sequence[SimulatorSpec],
    *,
    ready: Callable[[list[SimulatedCharger]], None] | None = None,
    until: asyncio.Future[None] | None = None,
) -> None:
    """Serve until cancelled (or until `until` completes).

    `ready` is called once all listen; by default one line per charger is printed.
    """
    if not specs:
        raise UserError("nothing to serve: the config has no Modbus TCP charger", EX_CONFIG)
    sims = await start_specs(specs)
    try:
        if ready is not None:
            ready(sims)
        else:
            for spec, sim in zip(specs, sims, strict=True):
                print(describe(spec, sim), flush=True)
        await (until if until is not None else asyncio.Event().wait())
    finally:
        await stop_simulators(sims)


async def serve_simulators(
    profile: str,
    host: str,
    port: int,
    count: int,
    *,
    ready: Callable[[list[SimulatedCharger]], None] | None = None,
    until: asyncio.Future[None] | None = None,
) -> None:
    """Serve `count` chargers of `profile` with 3-phase EVs (see `serve_specs`)."""
    specs = [
        SimulatorSpec(profile, host, port + i if port else 0, None, EvSpec()) for i in range(count)
    ]
    await serve_specs(specs, ready=ready, until=until)


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
    parser.add_argument("--profile", default="generic", choices=simulator_profiles())
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=0, help="first port; 0 = free ports")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the ports as one JSON line")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_stdin_closes(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
