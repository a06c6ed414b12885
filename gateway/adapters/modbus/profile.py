"""Charger register maps as data: the profile model and its loader.

A profile is one TOML file in `gateway/profiles/` naming a product's Modbus registers:
where each quantity lives, its type, word order and scale, the state codes, the current
setpoint and the watchdog the charger expects. Adding a charger model is adding a file.
The schema is documented in `gateway/profiles/generic.toml`.

Loading validates the file with pydantic (clear errors naming the file and key), then
compiles it into the plain frozen dataclasses of `specs.py` with the read plan and the field codecs
precomputed: the poll path never touches pydantic.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, TypeVar

from gateway.adapters.modbus.decoding import (
    DataType,
    WordOrder,
    is_integer_type,
    register_count,
)
from gateway.adapters.modbus.plan import PlannedRead, compile_reads
from gateway.adapters.modbus.schema import (
    ProfileFile,
    RegisterDefaults,
    RegisterModel,
    format_errors,
)
from gateway.adapters.modbus.specs import (
    DocumentSource,
    HeartbeatSpec,
    PhaseSwitchSpec,
    RegisterSpec,
    SetpointSpec,
    StartupWrite,
    WatchdogSpec,
)
from gateway.core.model import CableState, ComponentState

__all__ = [
    "MEASUREMENTS",
    "PLAUSIBLE",
    "ChargerState",
    "DocumentSource",
    "HeartbeatSpec",
    "PhaseSwitchSpec",
    "Profile",
    "ProfileError",
    "RegisterSpec",
    "SetpointSpec",
    "StartupWrite",
    "StateCode",
    "WatchdogSpec",
    "available_profiles",
    "compile_register",
    "load_named_file",
    "load_profile",
    "load_profile_file",
    "parse_profile",
]

MEASUREMENTS = (
    "voltage_l1",
    "voltage_l2",
    "voltage_l3",
    "current_l1",
    "current_l2",
    "current_l3",
    "active_power",
    "energy",
    "current_limit",
)
"""Numeric quantities a profile may map, in the order the adapter uses them."""

PLAUSIBLE: dict[str, tuple[float, float]] = {
    "voltage": (0.0, 1000.0),  # V phase-neutral; 0 on a phase that is not connected
    "current": (-1.0, 1000.0),  # A; meters show small negative noise at 0 A
    "active_power": (-1.0e6, 1.0e6),  # W
    "energy": (0.0, 1.0e13),  # Wh
    "current_limit": (0.0, 1000.0),  # A
    "safe_current": (0.0, 1000.0),  # A
}
"""Default plausible range per quantity; a register may narrow or widen it (`range`)."""

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file, key and reason."""


StateCode = int | str
ChargerState = tuple[CableState, ComponentState]


@dataclass(frozen=True)
class Profile:
    """A validated register map, with its read plan compiled (`read_plan`).

    `dataclasses.replace` on a profile recompiles the plan, so tests and callers can
    derive variants (another watchdog, a moved register) safely.
    """

    name: str
    vendor: str
    model: str
    protocol: str
    unit_id: int
    source: DocumentSource
    registers: Mapping[str, RegisterSpec]
    state: RegisterSpec
    state_codes: Mapping[StateCode, ChargerState]
    setpoint: SetpointSpec
    min_current: float = 6.0
    current_step: float = 0.1
    watchdog: WatchdogSpec | None = None
    safe_current: RegisterSpec | None = None
    safe_current_write: SetpointSpec | None = None  # where the register is writable
    read_max_gap: int = 16
    startup_writes: tuple[StartupWrite, ...] = ()
    phase_switch: PhaseSwitchSpec | None = None
    read_separately: bool = False  # one request per value (KEBA refuses wider reads)
    charging_states: Mapping[int, ComponentState] | None = None
    covers: tuple[str, ...] = ()  # other brands / models on the same register map
    read_plan: tuple[PlannedRead, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        specs = [*self.registers.values(), self.state]
        if self.read_separately:
            plan = tuple(
                planned
                for spec in sorted(specs, key=lambda s: (s.function_code, s.address))
                for planned in compile_reads([(spec.range, spec.codec())], 0)
            )
        else:
            plan = compile_reads(((s.range, s.codec()) for s in specs), self.read_max_gap)
        object.__setattr__(self, "read_plan", plan)

    def component_state(self, base: ComponentState, charging: float | None) -> ComponentState:
        """The component state from the state register's `base` and, where the profile
        has one, the `charging` register's value: it only refines "ready" (plugged, may
        charge). Without `charging_states` any nonzero value means "charging"."""
        if base is not ComponentState.READY or charging is None:
            return base
        if self.charging_states is None:
            return ComponentState.CHARGING if charging else base
        return self.charging_states.get(int(charging), base)

    @property
    def keepalive_interval(self) -> float | None:
        """Seconds after which the adapter rewrites its last setpoint (None: never)."""
        return self.watchdog.keepalive_interval if self.watchdog else None


def load_profile(name: str) -> Profile:
    """The shipped profile `name` (the file `gateway/profiles/<name>.toml`).

    Raises `ProfileError` for an unknown name (listing the known ones) or an invalid file.
    """
    return _load_shipped(name)


@functools.cache
def _load_shipped(name: str) -> Profile:
    return load_profile_file(shipped_file(_profiles_dir(), name, "charger profile"))


def shipped_file(directory: Path, name: str, kind: str) -> Path:
    """The file of the shipped `kind` (e.g. "meter profile") `name` in `directory`;
    `ProfileError` for a name that is not a plain name or has no file (listing the
    known ones)."""
    if not NAME_PATTERN.match(name):
        raise ProfileError(f"invalid {kind} name {name!r}")
    path = directory / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.toml")))
        raise ProfileError(f"unknown {kind} {name!r}; known {kind}s: {known}")
    return path


def available_profiles() -> list[Profile]:
    """Every shipped profile, sorted by name."""
    return [load_profile(p.stem) for p in sorted(_profiles_dir().glob("*.toml"))]


def load_profile_file(path: str | Path) -> Profile:
    """A profile from any TOML file; its `name` must match the file name."""
    return load_named_file(path, parse_profile, "profile")


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_P = TypeVar("_P", bound=_Named)


def load_named_file(
    path: str | Path, parse: Callable[[Mapping[str, Any], str], _P], what: str
) -> _P:
    """A device profile of any kind (charger, meter) from a TOML file: read, `parse`d,
    and its `name` checked against the file name; errors start with `what` and the path."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{what} {path}: {exc}") from exc
    profile = parse(data, str(path))
    if profile.name != path.stem:
        raise ProfileError(f"{what} {path}: name {profile.name!r} must match the file name")
    return profile


def parse_profile(data: Mapping[str, Any], source: str = "<profile>") -> Profile:
    """A profile from already parsed TOML data; `source` names it in errors."""
    from pydantic import ValidationError

    try:
        model = ProfileFile.model_validate(dict(data))
    except ValidationError as exc:
        raise ProfileError(f"profile {source}: {format_errors(exc)}") from exc
    try:
        return _compile(model)
    except ValueError as exc:
        raise ProfileError(f"profile {source}: {exc}") from exc


def _profiles_dir() -> Path:
    return Path(str(resources.files("gateway") / "profiles"))


def _register(
    name: str,
    model: RegisterModel,
    defaults: RegisterDefaults,
    plausible: Mapping[str, tuple[float, float]] = PLAUSIBLE,
) -> RegisterSpec:
    data_type = model.type or defaults.type or DataType.FLOAT32
    kind = name[: -len("_l1")] if re.search(r"_l[123]$", name) else name
    valid = model.range or plausible.get(kind)
    bounds = {} if valid is None else {"minimum": valid[0], "maximum": valid[1]}
    spec = RegisterSpec(
        name=name,
        address=model.address,
        function_code=model.function_code or defaults.function_code or 3,
        data_type=data_type,
        word_order=model.word_order or defaults.word_order or WordOrder.BIG,
        scale=model.scale if model.scale is not None else 1.0,
        count=register_count(data_type, model.length),
        nan_as_zero=bool(model.nan_as_zero),
        mask=model.mask,
        shift=model.shift or 0,
        **bounds,
    )
    if spec.address + spec.count > 65536:
        raise ValueError(f"registers.{name}: address {spec.address} + {spec.count} > 65536")
    if data_type is DataType.ASCII and name != "state":
        raise ValueError(f"registers.{name}: only the state may be ascii")
    if name == "charging" and not is_integer_type(data_type):
        raise ValueError(f"registers.charging: must be an integer register, not {data_type}")
    if (spec.mask is not None or spec.shift) and not is_integer_type(data_type):
        raise ValueError(f"registers.{name}: mask and shift are only for integer registers")
    return spec


def compile_register(
    name: str,
    model: RegisterModel,
    defaults: RegisterDefaults,
    plausible: Mapping[str, tuple[float, float]],
) -> RegisterSpec:
    """One validated register of any device profile (meters use it too): its type, word
    order and function code from `defaults` where the register does not say, and its
    plausible range from `plausible` by kind (`current_l2` -> "current") unless it
    gives its own `range`. Raises ValueError naming the register."""
    return _register(name, model, defaults, plausible)


def _compile(model: ProfileFile) -> Profile:
    defaults = model.register_defaults or RegisterDefaults()
    registers = {
        name: _register(name, reg, defaults)
        for name, reg in model.registers
        if name != "state" and isinstance(reg, RegisterModel)
    }
    state = _register("state", model.registers.state, defaults)
    state_codes = _state_codes(model.states, state)
    safe = None
    if model.safe_current is not None:
        safe = _register("safe_current", model.safe_current, defaults)
    if safe is not None and safe.data_type is DataType.ASCII:
        raise ValueError("safe_current cannot be ascii")
    if safe is not None and (safe.mask is not None or safe.shift):
        raise ValueError("safe_current: mask and shift are not supported there")
    safe_write = None
    if safe is not None and model.safe_current is not None and model.safe_current.writable:
        safe_write = SetpointSpec(
            address=safe.address,
            data_type=safe.data_type,
            word_order=safe.word_order,
            scale=safe.scale,
            write_function_code=model.safe_current.write_function_code or 16,
        )
        if safe.function_code != 3:
            raise ValueError("safe_current: only a holding register (function_code 3) is writable")
        if safe_write.write_function_code == 6 and safe_write.count != 1:
            raise ValueError(f"safe_current: function code 6 writes one register, not {safe.count}")
    sp = model.setpoint
    setpoint = SetpointSpec(
        address=sp.address,
        data_type=sp.type,
        word_order=sp.word_order,
        scale=sp.scale,
        write_function_code=sp.write_function_code,
    )
    if setpoint.write_function_code == 6 and setpoint.count != 1:
        raise ValueError(f"setpoint: function code 6 writes one register, {sp.type} needs more")
    wd = model.watchdog
    watchdog = None
    if wd is not None:
        hb = wd.heartbeat
        watchdog = WatchdogSpec(
            keepalive_interval=wd.keepalive_interval,
            validity_time=wd.validity_time,
            validity_register=wd.validity_register,
            heartbeat=HeartbeatSpec(hb.address, hb.value, hb.interval, hb.write_function_code)
            if hb
            else None,
            timeout_register=wd.timeout_register,
            timeout_scale=wd.timeout_scale,
        )
    ps = model.phase_switch
    phase_switch = None
    if ps is not None:
        phase_switch = PhaseSwitchSpec(
            ps.address, ps.type, ps.write_function_code, ps.one_phase, ps.three_phase
        )
    src = model.source
    return Profile(
        name=model.name,
        vendor=model.vendor,
        model=model.model,
        protocol=model.protocol,
        unit_id=model.unit_id,
        source=DocumentSource(src.title, src.url, src.version, src.notes),
        registers=registers,
        state=state,
        state_codes=state_codes,
        setpoint=setpoint,
        min_current=model.min_current,
        current_step=model.current_step,
        watchdog=watchdog,
        safe_current=safe,
        safe_current_write=safe_write,
        read_max_gap=model.read.max_gap,
        startup_writes=tuple(
            StartupWrite(w.address, w.value, w.write_function_code) for w in model.startup_writes
        ),
        phase_switch=phase_switch,
        read_separately=model.read.separate,
        charging_states=_charging_states(model),
        covers=tuple(model.covers),
    )


def _charging_states(model: ProfileFile) -> dict[int, ComponentState] | None:
    """`[charging_states]` with integer keys; only with a `charging` register."""
    if model.charging_states is None:
        return None
    if model.registers.charging is None:
        raise ValueError("charging_states needs a registers.charging register")
    try:
        return {int(key, 0): value for key, value in model.charging_states.items()}
    except ValueError:
        raise ValueError("charging_states: each code must be an integer") from None


def _state_codes(
    raw: Mapping[str, tuple[CableState, ComponentState]], state: RegisterSpec
) -> dict[StateCode, ChargerState]:
    """TOML keys are strings: integer state registers get integer keys."""
    codes: dict[StateCode, ChargerState] = {}
    for key, value in raw.items():
        if state.data_type is DataType.ASCII:
            codes[key.strip()] = value
            continue
        if not is_integer_type(state.data_type):
            raise ValueError(f"registers.state: must be an integer or ascii, not {state.data_type}")
        try:
            codes[int(key, 0)] = value
        except ValueError:
            raise ValueError(
                f"states.{key}: the state register is {state.data_type}, "
                "so each code must be an integer"
            ) from None
    return codes
