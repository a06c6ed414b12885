"""The parts of a charger profile, as plain frozen dataclasses the adapter uses.

`profile.py` validates a profile file and compiles it into these; the poll and write
paths only ever see these (no pydantic).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.adapters.modbus.decoding import (
    DataType,
    FieldCodec,
    WordOrder,
    encode,
    register_count,
)
from gateway.adapters.modbus.plan import RegisterRange


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """Where one quantity lives and how to decode it."""

    name: str
    address: int
    function_code: int
    data_type: DataType
    word_order: WordOrder = WordOrder.BIG
    scale: float = 1.0
    count: int = 1
    minimum: float = -1.7976931348623157e308
    maximum: float = 1.7976931348623157e308
    nan_as_zero: bool = False
    mask: int | None = None  # integer types: value = (raw >> shift) & mask, then scale
    shift: int = 0

    @property
    def range(self) -> RegisterRange:
        """The registers it spans, for read planning."""
        return RegisterRange(self.function_code, self.address, self.count, self.name)

    def codec(self) -> FieldCodec:
        """A codec for this value on its own (offset 0); planning places it in a block."""
        return FieldCodec(
            name=self.name,
            address=self.address,
            offset=0,
            data_type=self.data_type,
            word_order=self.word_order,
            scale=self.scale,
            count=self.count,
            minimum=self.minimum,
            maximum=self.maximum,
            nan_as_zero=self.nan_as_zero,
            mask=self.mask,
            shift=self.shift,
        )


@dataclass(frozen=True, slots=True)
class SetpointSpec:
    """The register the per-phase current limit is written to."""

    address: int
    data_type: DataType
    word_order: WordOrder
    scale: float
    write_function_code: int  # 6 (one register) or 16

    @property
    def count(self) -> int:
        """Registers the setpoint spans."""
        return register_count(self.data_type)

    def encode(self, amps: float) -> list[int]:
        """The registers that set `amps`."""
        return encode(amps, self.data_type, self.word_order, self.scale)


@dataclass(frozen=True, slots=True)
class HeartbeatSpec:
    """A register the charger wants written regularly to know its master is alive."""

    address: int
    value: int
    interval: float  # s
    write_function_code: int = 6


@dataclass(frozen=True, slots=True)
class WatchdogSpec:
    """What keeps the charger from falling back to its safe current.

    `keepalive_interval`: rewrite the last setpoint at least this often (s). The charger
    drops a setpoint after `validity_time` (documentation; configured on the charger),
    shown counting down in `validity_register` where it has one. `heartbeat`: a separate
    life-bit register some chargers use instead.
    """

    keepalive_interval: float | None = None
    validity_time: float | None = None
    validity_register: int | None = None
    heartbeat: HeartbeatSpec | None = None
    timeout_register: int | None = None  # holding register with the charger's timeout
    timeout_scale: float = 1.0  # s = raw x timeout_scale


@dataclass(frozen=True, slots=True)
class StartupWrite:
    """A register written once connected (and after a failure), e.g. "standby off"."""

    address: int
    value: int
    write_function_code: int = 6


@dataclass(frozen=True, slots=True)
class PhaseSwitchSpec:
    """The holding register selecting 1- or 3-phase charging (written at 0 A only)."""

    address: int
    data_type: DataType
    write_function_code: int
    one_phase: int  # value written for 1-phase charging
    three_phase: int  # value written for 3-phase charging

    def value(self, phases: int) -> int:
        """The register value for `phases` (1 or 3)."""
        if phases not in (1, 3):
            raise ValueError(f"phases must be 1 or 3, got {phases}")
        return self.one_phase if phases == 1 else self.three_phase


@dataclass(frozen=True, slots=True)
class DocumentSource:
    """The vendor document the addresses come from."""

    title: str
    url: str | None = None
    version: str | None = None
    notes: str | None = None
