"""JSON payloads of the MQTT interface (docs/mqtt.md), built from core data. Pure code.

Numbers are published as measured, to a precision that means something: power (W)
and energy (Wh) to 0.1, current (A) and voltage (V) to 0.01. A float32 register's
13.600000381469727 A goes out as 13.6.
"""

from __future__ import annotations

import json
import math
from typing import Any

from gateway.core.formulas import PoolSnapshot, to_grid_phases
from gateway.core.model import Bounds, ChargerSample, Phases, SystemBounds
from gateway.core.status import ChargerStatus
from gateway.timefmt import rfc3339

JsonObject = dict[str, Any]


def dumps(payload: JsonObject | list[Any]) -> str:
    """Compact JSON; NaN/inf are never produced by the builders (they emit null)."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False)


WATT_DIGITS = 1  # W and Wh to 0.1
AMP_DIGITS = 2  # A and V to 0.01


def _num(value: float | None, digits: int) -> float | None:
    """A rounded float for JSON, or None for a missing or non-finite value."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits) + 0.0  # + 0.0: never "-0.0"


def watts(value: float | None) -> float | None:
    """Power (W) or energy (Wh) for a payload: 0.1 resolution, null when unknown."""
    return _num(value, WATT_DIGITS)


def amps(value: float | None) -> float | None:
    """Current (A) or voltage (V) for a payload: 0.01 resolution, null when unknown."""
    return _num(value, AMP_DIGITS)


def phases_payload(values: Phases) -> JsonObject:
    """Per-phase current or voltage."""
    return {"value_p1": amps(values.p1), "value_p2": amps(values.p2), "value_p3": amps(values.p3)}


def bounds_payload(bounds: Bounds | None) -> JsonObject | None:
    """Power bounds in W."""
    if bounds is None:
        return None
    return {"lower": watts(bounds.lower), "upper": watts(bounds.upper)}


def pool_power(snapshot: PoolSnapshot) -> JsonObject:
    return {
        "timestamp": rfc3339(snapshot.timestamp),
        "value": watts(snapshot.power),
        "missing": list(snapshot.missing),
    }


def pool_current(snapshot: PoolSnapshot) -> JsonObject:
    return {
        "timestamp": rfc3339(snapshot.timestamp),
        **phases_payload(snapshot.current),
        "missing": list(snapshot.missing),
    }


def charger_state(
    status: ChargerStatus,
    sample: ChargerSample | None,
    phases: tuple[int, ...],
    now: float,
    wall_offset: float = 0.0,
) -> JsonObject:
    """A charger's state; measured fields are null when there is no sample at all.

    The timestamp is the sample's (when it was measured, plus `wall_offset` to turn
    its clock into the wall clock), or `now` without one. Current and voltage are
    given per grid phase, after the charger's rotation.
    """
    if sample is None:
        return {
            "timestamp": rfc3339(now),
            "status": status.value,
            "cable_state": None,
            "component_state": None,
            "active_power": None,
            "current_per_phase": None,
            "voltage_per_phase": None,
            "energy": None,
            "current_limit": None,
            "inclusion_bounds": None,
        }
    return {
        "timestamp": rfc3339(sample.timestamp + wall_offset),
        "status": status.value,
        "cable_state": sample.cable_state.value,
        "component_state": sample.component_state.value,
        "active_power": watts(sample.active_power),
        "current_per_phase": phases_payload(to_grid_phases(sample.current, phases)),
        "voltage_per_phase": phases_payload(_voltage_to_grid(sample.voltage, phases)),
        "energy": watts(sample.energy),
        "current_limit": amps(sample.current_limit),
        "inclusion_bounds": bounds_payload(sample.inclusion_bounds),
    }


def _voltage_to_grid(voltage: Phases, phases: tuple[int, ...]) -> Phases:
    """Voltages per grid phase: a grid phase the charger is not wired to has none (0)."""
    grid = [0.0, 0.0, 0.0]
    for terminal, grid_phase in enumerate(phases):
        grid[grid_phase - 1] = voltage.as_tuple()[terminal]
    return Phases(*grid)


def system_bounds(bounds: SystemBounds, now: float) -> JsonObject:
    return {
        "timestamp": rfc3339(now),
        "inclusion_bounds": bounds_payload(bounds.inclusion),
        "exclusion_bounds": bounds_payload(bounds.exclusion),
    }
