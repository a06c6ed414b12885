"""A plain EV behind a simulated charger: what it draws for a given current limit.

Pure code, the clock passed in. The EV follows IEC 61851 in the simplest way: with the
cable plugged and a limit of at least 6 A it draws min(limit, its own maximum) on each of
its phases (the charger's L1 first); below 6 A the charger offers no PWM signal and the
EV draws nothing. Energy integrates the power held since the previous update, so the
caller decides the time step (the simulator uses wall time between Modbus requests).
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_CHARGING_CURRENT = 6.0
"""A: below this the charger pauses (no PWM duty cycle for less, IEC 61851-1)."""


@dataclass(frozen=True, slots=True)
class EvDraw:
    """What the EV draws right now, per charger phase."""

    currents: tuple[float, float, float]
    power: float  # W, sum of current x voltage over the phases
    energy: float  # Wh delivered since the model started (plus its initial value)
    charging: bool


@dataclass(slots=True)
class EvModel:
    """One EV (or none, when unplugged) and the energy it has taken.

    `phases` is how many phases the EV's on-board charger uses (1, 2 or 3); a charger set
    to 1 phase (`charger_phases`) limits a 3-phase EV to its L1.
    """

    plugged: bool = False
    phases: int = 3
    max_current: float = 16.0
    energy: float = 0.0  # Wh
    _last_time: float | None = None
    _last_power: float = 0.0

    def plug(self, phases: int = 3, max_current: float = 16.0) -> None:
        """Plug in an EV that charges on `phases` phases at up to `max_current` A."""
        if phases not in (1, 2, 3):
            raise ValueError(f"an EV charges on 1, 2 or 3 phases, not {phases}")
        if not max_current >= 0:
            raise ValueError(f"max_current must be >= 0, got {max_current}")
        self.plugged = True
        self.phases = phases
        self.max_current = max_current

    def unplug(self) -> None:
        """Take the EV away."""
        self.plugged = False

    def currents(self, limit: float, charger_phases: int = 3) -> tuple[float, float, float]:
        """Per-phase current (A) the EV draws under `limit` (A per phase)."""
        if not self.plugged or limit < MIN_CHARGING_CURRENT:
            return (0.0, 0.0, 0.0)
        amps = max(0.0, min(limit, self.max_current))
        used = 1 if charger_phases == 1 else self.phases
        return (amps, amps if used >= 2 else 0.0, amps if used >= 3 else 0.0)

    def update(
        self,
        now: float,
        limit: float,
        voltages: tuple[float, float, float],
        charger_phases: int = 3,
    ) -> EvDraw:
        """Advance to `now` (s) and return the draw under the new `limit`.

        The energy since the previous update accrues at the power that was drawn then:
        the EV follows a new limit from this moment on, not retroactively.
        """
        if self._last_time is not None and now > self._last_time:
            self.energy += self._last_power * (now - self._last_time) / 3600.0
        if self._last_time is None or now > self._last_time:
            self._last_time = now
        currents = self.currents(limit, charger_phases)
        power = sum(i * v for i, v in zip(currents, voltages, strict=True))
        self._last_power = power
        return EvDraw(currents, power, self.energy, power > 0)
