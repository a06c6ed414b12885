"""Simulated chargers on one Modbus RTU (RS-485) bus: a pymodbus serial server on a
serial device (a pseudo-terminal in tests) serving every charger's unit id.

Each `SimulatedCharger` keeps its own layout, EV model and test controls; this server
only carries their frames. A silent charger receives its requests but its answers never
leave (the other units keep answering), as a hung box on a real bus.

    sims = [SimulatedCharger("heidelberg-energy-control", unit_id=u) for u in (1, 2)]
    async with SimulatedRtuBus("/tmp/bus-b", sims, parity="E"):
        ...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer

from gateway.simulator.modbus_server import SimulatedCharger
from gateway.simulator.served import Served


class SimulatedRtuBus(Served):
    """Several simulated chargers (distinct unit ids) answering on one serial port."""

    def __init__(
        self,
        port: str,
        chargers: Sequence[SimulatedCharger],
        *,
        baudrate: int = 19200,
        parity: str = "E",
        stopbits: int = 1,
        bytesize: int = 8,
    ) -> None:
        units = [c.unit_id for c in chargers]
        if not chargers or len(set(units)) != len(units):
            raise ValueError(f"need one or more chargers with distinct unit ids, got {units}")
        if any(not 1 <= u <= 247 for u in units):
            raise ValueError(f"RTU unit ids are 1-247, got {units}")
        self.port = port
        self.chargers = {c.unit_id: c for c in chargers}
        self.baudrate = baudrate
        self.parity = parity
        self.stopbits = stopbits
        self.bytesize = bytesize
        self.frames_received = 0
        self._server: ModbusSerialServer | None = None

    async def start(self) -> None:
        """Open the port and serve."""
        if self._server is not None:
            return
        server = ModbusSerialServer(
            [c.device() for c in self.chargers.values()],
            framer=FramerType.RTU,
            port=self.port,
            baudrate=self.baudrate,
            parity=self.parity,
            stopbits=self.stopbits,
            bytesize=self.bytesize,
            trace_packet=self._trace_packet,
            trace_pdu=self._trace_pdu,
        )
        await server.serve_forever(background=True)
        self._server = server

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self.frames_received += 1
            return data
        # an RTU frame starts with the unit id: a silent unit's answer never leaves
        charger = self.chargers.get(data[0]) if data else None
        return b"" if charger is not None and charger.silent else data

    def _trace_pdu(self, sending: bool, pdu: Any) -> Any:
        if not sending:
            charger = self.chargers.get(int(pdu.dev_id))
            if charger is not None:
                charger.record_request(pdu)
        return pdu
