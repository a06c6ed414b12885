"""Builders of core data for tests."""

from __future__ import annotations

from gateway.core.model import Bounds, CableState, ChargerSample, ComponentState, Phases


def sample(
    power: float = 0.0,
    current: tuple[float, float, float] = (0.0, 0.0, 0.0),
    timestamp: float = 1000.0,
    cable: CableState = CableState.EV_PLUGGED,
    state: ComponentState = ComponentState.READY,
    voltage: tuple[float, float, float] = (230.0, 230.0, 230.0),
    limit: float | None = 16.0,
    upper: float = 11040.0,
) -> ChargerSample:
    return ChargerSample(
        timestamp=timestamp,
        active_power=power,
        current=Phases(*current),
        voltage=Phases(*voltage),
        energy=0.0,
        cable_state=cable,
        component_state=state,
        current_limit=limit,
        inclusion_bounds=Bounds(0.0, upper),
    )
