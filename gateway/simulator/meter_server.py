"""A simulated grid meter: a meter layout served by a real pymodbus Modbus TCP server.

Each read runs the SimDevice action (pymodbus 3.16 simulator API): the layout decides
whether the meter answers it (function code, registers, count) and renders the present
load into the registers. Writes are refused: a meter is only read.

Test controls, all plain attributes or methods:
- `set_load(l1, l2, l3)`: the current per meter phase in A, import positive (negative:
  export, e.g. PV); `voltages` per phase. Power is voltage x current (power factor 1).
- `silent = True` (or `silence()`) / `resume()`: the meter stops answering; requests
  are still received and the TCP connection stays up, so clients run into their timeout.
- `garbage = True`: the currents read NaN / overflow / "not available" codes.
- `fail_with = ExcCodes.DEVICE_FAILURE` (any code): every read is answered with it.
- `request_count` / `recent_requests`: what the meter received.

`serve_meter` runs one until cancelled (demos, manual tests);
`python -m gateway.simulator.meter_server --profile eastron-sdm630 --port 5030
--load 20,5,-3` does that from the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from gateway.simulator.meter_layouts import METER_LAYOUTS, MeterLayout, MeterView
from gateway.simulator.modbus_server import Request
from gateway.simulator.served import ServedTcp

Triple = tuple[float, float, float]


class SimulatedMeter(ServedTcp):
    """One simulated meter on its own TCP port (127.0.0.1 by default)."""

    def __init__(
        self,
        profile: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        unit_id: int | None = None,
        load: Triple = (0.0, 0.0, 0.0),
        voltages: Triple = (230.0, 230.0, 230.0),
    ) -> None:
        """A meter serving `profile`'s layout; `port` 0 picks a free port at start."""
        layout_type = METER_LAYOUTS.get(profile)
        if layout_type is None:
            have = sorted(METER_LAYOUTS)
            raise ValueError(f"no meter simulator for profile {profile!r}; have {have}")
        self.layout: MeterLayout = layout_type()
        self.profile_name = profile
        self.host = host
        self._port = port
        self.unit_id = self.layout.unit_id if unit_id is None else unit_id
        self.load = load
        self.voltages = voltages
        self.garbage = False
        self.silent = False
        self.fail_with: ExcCodes | None = None
        self.request_count = 0
        self.recent_requests: deque[Request] = deque(maxlen=1000)


    def device(self) -> SimDevice:
        """The pymodbus device serving this meter's unit (an RTU bus server has several:
        `SimulatedRtuBus` carries meters as well as chargers)."""
        simdata = [
            SimData(address=r.address, count=r.count, values=0, datatype=DataType.REGISTERS)
            for r in self.layout.regions
        ]
        return SimDevice(id=self.unit_id, simdata=simdata, action=self._action)

    def record_request(self, pdu: Any) -> None:
        """Count a request received for this meter."""
        self.request_count += 1
        self.recent_requests.append(
            Request(int(pdu.function_code), int(pdu.address), int(pdu.count))
        )

    # -- test controls -----------------------------------------------------------

    def set_load(self, l1: float, l2: float, l3: float) -> None:
        """The current per meter phase (A), import positive."""
        self.load = (float(l1), float(l2), float(l3))

    def silence(self) -> None:
        """Stop answering (clients time out)."""
        self.silent = True

    def resume(self) -> None:
        """Answer again."""
        self.silent = False

    def view(self) -> MeterView:
        """What the meter measures now."""
        return MeterView(voltages=self.voltages, currents=self.load)

    # -- request handling --------------------------------------------------------

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus SimDevice action: refuse writes, check and render reads."""
        if set_values is not None:
            return ExcCodes.ILLEGAL_FUNCTION  # nothing on a meter is written
        if self.fail_with is not None:
            return self.fail_with
        refused = self.layout.check_read(function_code, address, count)
        if refused is not None:
            return refused
        for where, values in self.layout.render(self.view(), self.garbage):
            offset = where - start_address
            if offset >= 0 and offset + len(values) <= len(registers):
                registers[offset : offset + len(values)] = values
        return None


async def serve_meter(
    profile: str,
    host: str = "127.0.0.1",
    port: int = 5030,
    *,
    load: Triple = (0.0, 0.0, 0.0),
    unit_id: int | None = None,
    ready: Callable[[SimulatedMeter], None] | None = None,
    until: asyncio.Future[None] | None = None,
) -> None:
    """Serve one simulated meter until cancelled (or until `until` completes).

    `ready` is called once it listens; by default one line is printed.
    """
    async with SimulatedMeter(profile, host=host, port=port, unit_id=unit_id, load=load) as sim:
        if ready is not None:
            ready(sim)
        else:
            print(
                f"{profile} meter simulator on {sim.host}:{sim.port} unit {sim.unit_id}, "
                f"load {sim.load} A",
                flush=True,
            )
        await (until if until is not None else asyncio.Event().wait())


def _load(text: str) -> Triple:
    parts = [float(p) for p in text.split(",")]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("give three currents: L1,L2,L3")
    return (parts[0], parts[1], parts[2])


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m gateway.simulator.meter_server`: see the module docstring."""
    parser = argparse.ArgumentParser(description="Serve a simulated grid meter over Modbus TCP.")
    parser.add_argument("--profile", default="eastron-sdm630", choices=sorted(METER_LAYOUTS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5030)
    parser.add_argument("--unit-id", type=int, default=None)
    parser.add_argument("--load", type=_load, default=(0.0, 0.0, 0.0), help="A per phase: L1,L2,L3")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve_meter(args.profile, args.host, args.port, load=args.load, unit_id=args.unit_id)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
