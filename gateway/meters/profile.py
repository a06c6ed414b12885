"""Meter register maps as data: the meter profile model and its loader.

A meter profile is one TOML file in `gateway/meters/profiles/` naming where a product
keeps its current (required), power and voltage (optional) per phase, with the same
register keys as a charger profile (`address`, `function_code`, `type`, `word_order`,
`scale`, `range`; see `gateway/profiles/generic.toml`) and a `[read]` section that may
also cap the registers per request (`max_count`, for meters that answer fewer than the
Modbus maximum at once). Adding a meter model is adding a file.

Loading reuses the charger profiles' register schema, codecs and read planning; only
the set of quantities and their plausible ranges are the meter's own.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.adapters.modbus.plan import MAX_READ_COUNT, PlannedRead, compile_reads
from gateway.adapters.modbus.profile import (
    NAME_PATTERN,
    DocumentSource,
    ProfileError,
    RegisterSpec,
    compile_register,
    load_named_file,
    shipped_file,
)
from gateway.adapters.modbus.schema import (
    ReadModel,
    RegisterDefaults,
    RegisterModel,
    SourceModel,
    format_errors,
)

PLAUSIBLE: dict[str, tuple[float, float]] = {
    "current": (-10_000.0, 10_000.0),  # A, signed: a meter may report export negative
    "power": (-10.0e6, 10.0e6),  # W
    "voltage": (0.0, 1000.0),  # V phase-neutral
}
"""Default plausible range per quantity of a meter (a register may set its own)."""

QUANTITIES = ("current", "power", "voltage")
PHASE_NAMES = tuple(f"{q}_l{n}" for q in QUANTITIES for n in (1, 2, 3))


class _MeterSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeterRegistersModel(_MeterSection):
    """`[registers]`: current per phase (required), power and voltage (all or none)."""

    current_l1: RegisterModel
    current_l2: RegisterModel
    current_l3: RegisterModel
    power_l1: RegisterModel | None = None
    power_l2: RegisterModel | None = None
    power_l3: RegisterModel | None = None
    voltage_l1: RegisterModel | None = None
    voltage_l2: RegisterModel | None = None
    voltage_l3: RegisterModel | None = None

    @model_validator(mode="after")
    def _whole_quantities(self) -> MeterRegistersModel:
        for quantity in ("power", "voltage"):
            given = [getattr(self, f"{quantity}_l{n}") is not None for n in (1, 2, 3)]
            if any(given) and not all(given):
                raise ValueError(f"give {quantity}_l1, {quantity}_l2 and {quantity}_l3, or none")
        return self


class MeterReadModel(ReadModel):
    """`[read]`: `max_gap` as for chargers, and `max_count` registers per request."""

    max_count: int = Field(MAX_READ_COUNT, ge=2, le=MAX_READ_COUNT)


class MeterProfileFile(_MeterSection):
    """A whole meter profile file."""

    name: str = Field(pattern=NAME_PATTERN.pattern)
    vendor: str = Field(min_length=1)
    model: str = Field(min_length=1)
    protocol: Literal["modbus-tcp", "modbus-rtu"]
    unit_id: int = Field(1, ge=0, le=255)
    source: SourceModel
    read: MeterReadModel = Field(default_factory=lambda: MeterReadModel())
    register_defaults: RegisterDefaults | None = None
    registers: MeterRegistersModel


@dataclass(frozen=True)
class MeterProfile:
    """A validated meter register map with its read plan compiled (`read_plan`)."""

    name: str
    vendor: str
    model: str
    protocol: str
    unit_id: int
    source: DocumentSource
    registers: Mapping[str, RegisterSpec]
    read_max_gap: int = 16
    read_max_count: int = MAX_READ_COUNT
    read_plan: tuple[PlannedRead, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        specs = self.registers.values()
        plan = compile_reads(
            ((s.range, s.codec()) for s in specs), self.read_max_gap, self.read_max_count
        )
        object.__setattr__(self, "read_plan", plan)

    def has(self, quantity: str) -> bool:
        """True when the profile maps `quantity` ("power", "voltage") on every phase."""
        return f"{quantity}_l1" in self.registers


def meter_profiles_dir() -> Path:
    """Where the shipped meter profiles are."""
    return Path(str(resources.files("gateway") / "meters" / "profiles"))


def meter_profile_names() -> list[str]:
    """The names of the shipped meter profiles, sorted."""
    return sorted(p.stem for p in meter_profiles_dir().glob("*.toml"))


@functools.cache
def load_meter_profile(name: str) -> MeterProfile:
    """The shipped meter profile `name`; `ProfileError` for an unknown or invalid one."""
    return load_meter_profile_file(shipped_file(meter_profiles_dir(), name, "meter profile"))


def available_meter_profiles() -> list[MeterProfile]:
    """Every shipped meter profile, sorted by name."""
    return [load_meter_profile(name) for name in meter_profile_names()]


def load_meter_profile_file(path: str | Path) -> MeterProfile:
    """A meter profile from any TOML file; its `name` must match the file name."""
    return load_named_file(path, parse_meter_profile, "meter profile")


def parse_meter_profile(data: Mapping[str, Any], source: str = "<meter profile>") -> MeterProfile:
    """A meter profile from already parsed TOML data; `source` names it in errors."""
    try:
        model = MeterProfileFile.model_validate(dict(data))
    except ValidationError as exc:
        raise ProfileError(f"meter profile {source}: {format_errors(exc)}") from exc
    defaults = model.register_defaults or RegisterDefaults()
    try:
        registers = {
            name: compile_register(name, reg, defaults, PLAUSIBLE)
            for name, reg in model.registers
            if isinstance(reg, RegisterModel)
        }
        src = model.source
        return MeterProfile(
            name=model.name,
            vendor=model.vendor,
            model=model.model,
            protocol=model.protocol,
            unit_id=model.unit_id,
            source=DocumentSource(src.title, src.url, src.version, src.notes),
            registers=registers,
            read_max_gap=model.read.max_gap,
            read_max_count=model.read.max_count,
        )
    except ValueError as exc:
        raise ProfileError(f"meter profile {source}: {exc}") from exc
