"""What goes into the distributor (one `ChargerState` per charger) and what comes out.

Currents are A per phase, powers W. A charger's `phases` maps its terminals to grid
phases: `phases[i]` is the grid phase (1..3) wired to the charger's L(i+1), so
`(2, 3, 1)` is a rotated three-phase charger and `(2,)` a single-phase one on grid L2.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from gateway.core.model import ChargerSample, Phases
from gateway.core.status import ChargerStatus

NO_CURRENT = Phases()
"""Zero on every phase."""

PhaseLimit = float | tuple[float, float, float]
"""A fuse limit (A): the same on every grid phase, or one per grid phase L1..L3."""


_VALID_PHASES = frozenset(
    phases for n in (1, 2, 3) for phases in itertools.permutations((1, 2, 3), n)
)
"""Every valid wiring: 1 to 3 distinct grid phases, in any order."""


@dataclass(frozen=True, slots=True)
class ChargerState:
    """One charger as the distributor sees it at one call: wiring, limits, latest data.

    Attributes:
        charger_id: The charger's id.
        phases: Grid phase wired to each of the charger's terminals (distinct, 1..3).
        max_current: Hardware or cable limit (A per phase).
        min_current: The charger's own minimum (A); None means the config's.
        step: Resolution of the charger's setpoint (A); limits are rounded down to it.
        nominal_voltage: Voltage when the sample has none; None means the config's.
        ev_phases: How many phases the EV draws on, if configured (else detected from
            measured currents; until then every wired phase is assumed).
        sample: The latest reading, None when there never was one.
        fresh: False when `sample` is missing or older than the pool's max data age:
            the charger cannot be commanded reliably, so it is assumed to draw what it
            was last allowed (see `Distributor`).
        status: The status tracker's verdict (`UNCERTAIN`: a recent write failed).
            Its string value ("working", ...) is accepted and turned into the enum.
        phase_switching: The charger may be switched between 1 and 3 phases (its
            profile can, its config allows it); needs three wired phases.
        phases_in_use: The charger's phase setting now: 1 after a switch to one phase
            (its L1 only), else the wired count; None means the wired count.
        switching: A phase switch is under way (paused at 0 A, register written,
            not resumed yet): the charger is held, its coming limit reserved.
    """

    charger_id: str
    phases: tuple[int, ...]
    max_current: float
    min_current: float | None = None
    step: float = 0.1
    nominal_voltage: float | None = None
    ev_phases: int | None = None
    sample: ChargerSample | None = None
    fresh: bool = True
    status: ChargerStatus = ChargerStatus.WORKING
    phase_switching: bool = False
    phases_in_use: int | None = None
    switching: bool = False

    @property
    def setting(self) -> int:
        """The charger's phase setting now (1 after a switch to one phase)."""
        return self.phases_in_use or len(self.phases)

    def __post_init__(self) -> None:
        # Built for every charger at every distribution: the checks are cheap, and a
        # refusal's message is built only when there is one.
        phases = self.phases
        if self.phase_switching and len(phases) != 3:
            raise self._invalid("phase switching needs three wired phases")
        if self.phases_in_use is not None and self.phases_in_use not in (1, len(phases)):
            raise self._invalid(f"phases_in_use must be 1 or {len(phases)}")
        if tuple(phases) not in _VALID_PHASES:
            if not 1 <= len(phases) <= 3 or len(set(phases)) != len(phases):
                raise self._invalid("phases must be 1 to 3 distinct grid phases")
            raise self._invalid("phases must be grid phases 1, 2 or 3")
        if not 0 <= self.max_current < math.inf:
            raise self._invalid("max_current must be a finite number >= 0")
        if not 0 < self.step < math.inf:
            raise self._invalid("step must be > 0 A")
        if self.min_current is not None and not 0 < self.min_current < math.inf:
            raise self._invalid("min_current must be > 0 A")
        if self.ev_phases is not None and not 1 <= self.ev_phases <= len(phases):
            raise self._invalid(f"ev_phases must be between 1 and {len(phases)}")
        if isinstance(self.status, ChargerStatus):
            return
        try:
            status = ChargerStatus(self.status)
        except ValueError:
            choices = ", ".join(member.value for member in ChargerStatus)
            raise self._invalid(f"status must be one of {choices}") from None
        object.__setattr__(self, "status", status)

    def _invalid(self, reason: str) -> ValueError:
        """The error refusing this state: the charger, then `reason`."""
        return ValueError(f"charger {self.charger_id!r}: {reason}")


class DecisionCode(StrEnum):
    """Why a charger got its limit; `ChargerDecision.reason` says it in words."""

    CHARGING = "charging"
    """Admitted, at its max-min fair share."""
    RAMPING = "ramping"
    """Admitted, held back by the ramp (increases are gradual)."""
    AT_MAXIMUM = "at_maximum"
    """Admitted, at the charger's maximum current."""
    RECLAIMED = "reclaimed"
    """Admitted, capped near its draw because it draws less than it was given."""
    WAITING = "waiting"
    """Wants power, but the minimum current does not fit yet: queued."""
    PAUSED_MIN_OFF = "paused_min_off"
    """Paused recently; may not restart before the minimum off time."""
    PAUSED_ROTATION = "paused_rotation"
    """Charged for a rotation period; yielded to an EV that waited longer."""
    PAUSED_IDLE = "paused_idle"
    """Drew nothing for a while; its place went to EVs that draw."""
    PAUSED_LIMIT = "paused_limit"
    """Cut to 0: the target or a phase limit cannot hold its minimum current."""
    WAKING = "waking"
    """At 0 for a moment: a wake-up toggle for an EV that did not resume."""
    NO_EV = "no_ev"
    """No EV plugged in: nothing reserved."""
    NOT_WORKING = "not_working"
    """Charger not ready (error, not usable): nothing given."""
    BELOW_MINIMUM = "below_minimum"
    """The charger's maximum is below the minimum current: it can never charge."""
    STALE = "stale"
    """No fresh data: limit held (never raised); its last limit is reserved."""
    UNCERTAIN = "uncertain"
    """A write failed recently: limit held (never raised); its last limit is reserved."""
    PHASE_SWITCH = "phase_switch"
    """Switching between 1 and 3 phases (paused at 0 A meanwhile); the limit it resumes
    at is reserved on the grid phases it will use."""


WANTS_POWER = frozenset(
    {
        DecisionCode.WAITING,
        DecisionCode.PAUSED_MIN_OFF,
        DecisionCode.PAUSED_ROTATION,
        DecisionCode.PAUSED_LIMIT,
        DecisionCode.BELOW_MINIMUM,
        DecisionCode.WAKING,
    }
)
"""Codes of an EV that would take power but gets 0 (see `Allocation.blocked`)."""


class ResumeState(StrEnum):
    """Whether an EV took power when it was (re)started; `ChargerDecision.resume`."""

    OK = "ok"
    """Nothing wrong seen: it draws, or it was not started and is not expected to."""
    WAKING = "waking"
    """It drew nothing within `resume_timeout` of a start: wake-up toggles under way."""
    STALLED = "stalled"
    """Every wake-up failed: it still draws nothing (asleep, or full). Until it draws
    or unplugs it keeps this mark; it is not rotated out for the rest of the session."""


@dataclass(frozen=True, slots=True)
class ChargerDecision:
    """The distributor's decision for one charger, with what it was based on.

    Attributes:
        charger_id: The charger's id.
        current: The limit to command (A per phase): 0 or in [min, max] on the step.
        code: Why, as a code.
        reason: Why, in words (e.g. "reclaimed: draws 7.9 A, capped at 8.9 A").
        grid_phases: Grid phases this charger is counted on for the fuse.
        ev_phases: Phases counted for power (detected, configured or assumed).
        power: Estimated power (W) this charger may draw under the decision.
        controlled: True when `current` is trusted to be applied; False for stale,
            uncertain or not working chargers, whose `reserved` current is counted
            instead.
        reserved: Current (A) per grid phase counted for an uncontrolled charger.
        resume: Whether the EV took power after its last (re)start (`ResumeState`).
        phases: The charger's phase setting to use: 1 (its L1 only) or its wired count.
            When it differs from the charger's `phases_in_use`, the charger is to be
            switched (pause at 0 A, switch, resume at `current`).
    """

    charger_id: str
    current: float
    code: DecisionCode
    reason: str
    grid_phases: tuple[int, ...]
    ev_phases: int
    power: float
    controlled: bool = True
    reserved: Phases = NO_CURRENT
    resume: ResumeState = ResumeState.OK
    phases: int = 3


@dataclass(frozen=True, slots=True)
class Allocation:
    """The result of one `Distributor.distribute` call.

    Attributes:
        timestamp: The `now` of the call.
        target_power: The target it was given (W), after sanitising (NaN -> 0).
        phase_limit: The fuse limit (A) as given: one for every grid phase, one per
            grid phase, or None for none.
        decisions: Per charger id, its decision.
        power: Estimated power of the allocation (W): controlled chargers at their
            limit on their EV's phases, plus what uncontrolled ones are assumed to draw.
        phase_currents: Per grid phase, the sum of every charger's limit on it plus
            uncontrolled chargers' reserves: what the fuse may have to carry.
        reserved_currents: The uncontrolled part of `phase_currents`.
        reserved_power: The uncontrolled part of `power`.
    """

    timestamp: float
    target_power: float
    phase_limit: PhaseLimit | None
    decisions: Mapping[str, ChargerDecision]
    power: float
    phase_currents: Phases
    reserved_currents: Phases = NO_CURRENT
    reserved_power: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def limits(self) -> dict[str, float]:
        """Per charger id, the current limit to command (A per phase)."""
        return {cid: decision.current for cid, decision in self.decisions.items()}

    def __getitem__(self, charger_id: str) -> float:
        """The current limit for one charger (A per phase)."""
        return self.decisions[charger_id].current

    def reason(self, charger_id: str) -> str:
        """Why one charger got its limit, in words."""
        return self.decisions[charger_id].reason

    @property
    def blocked(self) -> dict[str, DecisionCode]:
        """Chargers whose EV would take power but gets 0, with the code saying why.

        When a positive target leaves every limit at 0, these explain it (e.g.
        `WAITING`: no room for the minimum; `BELOW_MINIMUM`: the charger cannot reach
        it); an empty result then means no EV can take power now.
        """
        return {
            cid: decision.code
            for cid, decision in self.decisions.items()
            if decision.current <= 0 and decision.code in WANTS_POWER
        }

    @property
    def phases(self) -> dict[str, int]:
        """Per charger id, the phase setting it is to use (1 or its wired count)."""
        return {cid: decision.phases for cid, decision in self.decisions.items()}

    @property
    def resume(self) -> dict[str, ResumeState]:
        """Per charger id, whether its EV took power after its last (re)start."""
        return {cid: decision.resume for cid, decision in self.decisions.items()}
