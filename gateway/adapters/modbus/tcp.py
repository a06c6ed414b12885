"""A charger on Modbus TCP: the register-map charger (charger.py) on its own connection."""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.adapters.modbus.charger import ModbusCharger
from gateway.adapters.modbus.profile import Profile
from gateway.adapters.modbus.transport import TcpTransport


class ModbusTcpCharger(ModbusCharger):
    """One charger (one unit id) on Modbus TCP, on its own connection."""

    def __init__(
        self,
        charger_id: str,
        host: str,
        port: int,
        unit_id: int | None,
        profile: Profile | str,
        max_current: float,
        wired_phases: int,
        nominal_voltage: float = 230.0,
        timeout: float = 1.0,
        safe_current: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Set up the adapter; nothing connects until the first call. `timeout` (s)
        bounds the connect and every request; see `ModbusCharger` for the rest."""
        if not timeout > 0:
            raise ValueError(f"charger {charger_id}: need timeout > 0 (got {timeout})")
        super().__init__(
            charger_id,
            TcpTransport(host, port, timeout, name=charger_id),
            unit_id,
            profile,
            max_current,
            wired_phases,
            nominal_voltage,
            safe_current,
            clock,
        )
        self.host = host
        self.port = port

