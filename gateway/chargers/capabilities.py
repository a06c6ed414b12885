"""What a charger can do, taken once from its profile (or OCPP) and its config."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.adapters.base import Charger, HasDeadlines


@dataclass(frozen=True, slots=True)
class Capabilities:
    """A charger's limits and timings, as the runtime and the distributor use them.

    Attributes:
        min_current: The lowest limit it charges at (A per phase); below it, 0.
        max_current: Its hardware or cable limit (A per phase).
        step: Resolution of its setpoint (A); limits are allocated in this step.
        phases: Grid phase wired to each of its terminals, L1 first.
        ev_phases: Phases the EV draws on, where configured (else detected).
        keepalive: Seconds between setpoint rewrites its watchdog needs (None: none).
        phase_switching: True when its profile can switch between 1 and 3 phases.
        read_timeout: Seconds a whole read may take before it counts as failed.
        write_timeout: Seconds a limit write may take before it counts as failed.
    """

    min_current: float
    max_current: float
    step: float
    phases: tuple[int, ...]
    ev_phases: int | None
    keepalive: float | None
    phase_switching: bool
    read_timeout: float
    write_timeout: float


def timeouts(adapter: Charger, request_timeout: float) -> tuple[float, float]:
    """(read, write) deadlines: the adapter's own where it knows them, else one timeout."""
    if isinstance(adapter, HasDeadlines):
        return adapter.read_deadline, adapter.write_deadline
    return request_timeout, request_timeout
