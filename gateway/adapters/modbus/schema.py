"""The TOML schema of a charger profile, validated with pydantic at load time only.

Unknown keys are errors (a typo must not silently drop a register). `profile.py` turns a
validated `ProfileFile` into the plain dataclasses the adapter uses.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.adapters.modbus.decoding import DataType, WordOrder
from gateway.core.model import CableState, ComponentState


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _finite_nonzero(value: float | None) -> float | None:
    if value is not None and (not math.isfinite(value) or value == 0):
        raise ValueError("must be a finite number other than 0")
    return value


class RegisterDefaults(_Strict):
    """`[register_defaults]`: applied to every register that does not say otherwise."""

    function_code: Literal[3, 4] | None = None
    type: DataType | None = None
    word_order: WordOrder | None = None


class RegisterModel(_Strict):
    """One quantity: `{ address = 306, type = "float32", word_order = "big", scale = 1 }`."""

    address: int = Field(ge=0, le=65535)
    function_code: Literal[3, 4] | None = None  # 3 holding, 4 input
    type: DataType | None = None
    word_order: WordOrder | None = None
    scale: float | None = None  # engineering value = raw x scale
    length: int | None = Field(None, ge=1, le=125)  # registers, ascii only
    range: tuple[float, float] | None = None  # plausible [min, max] after scaling
    nan_as_zero: bool | None = None  # the vendor sends NaN for "not available"
    shift: int | None = Field(None, ge=0, le=63)  # integer types: value = (raw >> shift) & mask
    mask: int | None = Field(None, ge=1, le=2**64 - 1)

    _check_scale = field_validator("scale")(_finite_nonzero)

    @model_validator(mode="after")
    def _consistent(self) -> RegisterModel:
        if self.type is DataType.ASCII and self.length is None:
            raise ValueError("an ascii register needs length (in registers)")
        if self.type is not DataType.ASCII and self.length is not None:
            raise ValueError("length is only for ascii registers")
        bits = self.mask is not None or self.shift is not None
        if bits and self.type in (DataType.ASCII, DataType.FLOAT32, DataType.FLOAT64):
            raise ValueError("mask and shift are only for integer registers")
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"range {list(self.range)} must be [min, max] with min < max")
        return self


class SafeCurrentModel(RegisterModel):
    """`[safe_current]`: the charger's fail-safe current (A), read back; `writable` when
    the vendor documents it R/W, then written with `write_function_code` (holding only)."""

    writable: bool = False
    write_function_code: Literal[6, 16] | None = None

    @model_validator(mode="after")
    def _writable(self) -> SafeCurrentModel:
        if self.write_function_code is not None and not self.writable:
            raise ValueError("write_function_code needs writable = true")
        if self.writable and self.function_code == 4:
            raise ValueError("an input register (function_code 4) cannot be writable")
        return self


class RegistersModel(_Strict):
    """`[registers]`: the measurement and state registers the adapter reads each poll."""

    voltage_l1: RegisterModel | None = None
    voltage_l2: RegisterModel | None = None
    voltage_l3: RegisterModel | None = None
    current_l1: RegisterModel | None = None
    current_l2: RegisterModel | None = None
    current_l3: RegisterModel | None = None
    active_power: RegisterModel
    energy: RegisterModel | None = None
    current_limit: RegisterModel | None = None  # the limit the charger applies (read back)
    state: RegisterModel
    # an integer register whose nonzero value turns the state's component state "ready"
    # into "charging", for chargers that report plug and charging state separately
    charging: RegisterModel | None = None


class SourceModel(_Strict):
    """`[source]`: the vendor document the addresses come from."""

    title: str = Field(min_length=1)
    url: str | None = None
    version: str | None = None
    notes: str | None = None


class ReadModel(_Strict):
    """`[read]`: how far read planning may merge (see `plan.py`)."""

    max_gap: int = Field(16, ge=0, le=124)
    # every value in a request of its own, even where registers touch: for chargers that
    # refuse a read spanning two values (KEBA)
    separate: bool = False


class SetpointModel(_Strict):
    """`[setpoint]`: where the per-phase current limit (A) is written."""

    address: int = Field(ge=0, le=65535)
    type: DataType
    word_order: WordOrder = WordOrder.BIG
    scale: float = 1.0  # amps = raw x scale (0.1 for deci-amps, 0.001 for mA)
    write_function_code: Literal[6, 16] = 16

    _check_scale = field_validator("scale")(_finite_nonzero)

    @field_validator("type")
    @classmethod
    def _numeric(cls, value: DataType) -> DataType:
        if value is DataType.ASCII:
            raise ValueError("the setpoint is a number, not ascii")
        return value


class HeartbeatModel(_Strict):
    """`[watchdog.heartbeat]`: write `value` to `address` every `interval` seconds."""

    address: int = Field(ge=0, le=65535)
    value: int = Field(ge=0, le=65535)
    interval: float = Field(gt=0, le=3600)
    write_function_code: Literal[6, 16] = 6


class StartupWriteModel(_Strict):
    """`[[startup_writes]]`: write `value` to `address` once connected (and again after a
    communication failure), such as "standby off"."""

    address: int = Field(ge=0, le=65535)
    value: int = Field(ge=0, le=65535)
    write_function_code: Literal[6, 16] = 6


class PhaseSwitchModel(_Strict):
    """`[phase_switch]`: the holding register that selects 1- or 3-phase charging; the
    value written for each. Written by the
    adapter's `switch_phases` (gateway.chargers.phase_switch) at 0 A only."""

    address: int = Field(ge=0, le=65535)
    type: Literal[DataType.UINT16] = DataType.UINT16
    write_function_code: Literal[6, 16] = 16
    one_phase: int = Field(ge=0, le=65535)
    three_phase: int = Field(ge=0, le=65535)

    @model_validator(mode="after")
    def _distinct(self) -> PhaseSwitchModel:
        if self.one_phase == self.three_phase:
            raise ValueError("one_phase and three_phase must be different values")
        return self


class WatchdogModel(_Strict):
    """`[watchdog]`: what the charger needs to keep trusting its setpoint."""

    keepalive_interval: float | None = Field(None, gt=0, le=3600)
    validity_time: float | None = Field(None, gt=0, le=86400)
    validity_register: int | None = Field(None, ge=0, le=65535)
    heartbeat: HeartbeatModel | None = None
    # a holding register with the charger's own watchdog timeout (s = raw x timeout_scale),
    # read at start: the setpoint is then rewritten at least every quarter of it
    timeout_register: int | None = Field(None, ge=0, le=65535)
    timeout_scale: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _keepalive_within_validity(self) -> WatchdogModel:
        if (
            self.keepalive_interval is not None
            and self.validity_time is not None
            and self.keepalive_interval >= self.validity_time
        ):
            raise ValueError(
                f"keepalive_interval {self.keepalive_interval:g} s must be shorter than "
                f"validity_time {self.validity_time:g} s, or the charger falls back"
            )
        return self


class ProfileFile(_Strict):
    """A whole profile file."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    vendor: str = Field(min_length=1)
    model: str = Field(min_length=1)
    protocol: Literal["modbus-tcp", "modbus-rtu"]
    unit_id: int = Field(1, ge=0, le=255)
    min_current: float = Field(6.0, ge=0, le=80)  # below it, a limit means "pause" (0 A)
    current_step: float = Field(1.0, gt=0, le=10)  # A: limits are rounded down to it
    source: SourceModel
    read: ReadModel = Field(default_factory=lambda: ReadModel())
    register_defaults: RegisterDefaults | None = None
    registers: RegistersModel
    states: dict[str, tuple[CableState, ComponentState]] = Field(min_length=1)
    setpoint: SetpointModel
    watchdog: WatchdogModel | None = None
    safe_current: SafeCurrentModel | None = None  # the charger's fail-safe current (A)
    startup_writes: list[StartupWriteModel] = Field(default_factory=list)
    phase_switch: PhaseSwitchModel | None = None
    # codes of the `charging` register -> the component state they mean while the state
    # register says "ready" (default: any nonzero code means "charging")
    charging_states: dict[str, ComponentState] | None = None
    # other brands and models built on the same register map (shown by `ev-gateway profiles`)
    covers: list[str] = Field(default_factory=list)


def format_errors(exc: ValidationError) -> str:
    """One line per problem: `key.path: message`."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"{where}: {error['msg']}")
    return "; ".join(lines)
