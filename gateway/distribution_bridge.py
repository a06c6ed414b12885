"""Feeds a pool's chargers into the distributor and reads its allocation back.

The distributor (`gateway.distribution`) is pure and knows nothing of the config or of
the chargers' runtimes; this module turns each `ChargerRuntime` (its capabilities,
latest sample, freshness and status) into the distributor's `ChargerState`, and the
`Allocation` into what the controller writes and reports. `Recheck` tells when a
distribution can be skipped because none of its inputs changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gateway.chargers import ChargerRuntime, WriteOutcome
from gateway.config import DistributionConfig as DistributionSection
from gateway.distribution import ChargerState, DistributionConfig, Distributor
from gateway.distribution.model import PhaseLimit


@dataclass(frozen=True, slots=True)
class PoolAllocation:
    """Limits to write (A per phase), their estimated power (W) and the reasons."""

    limits: dict[str, float]
    power: dict[str, float]
    reasons: dict[str, str]
    phase_currents: tuple[float, float, float]
    unreachable_reason: str | None
    resume: dict[str, str] = field(default_factory=dict)
    phases: dict[str, int] = field(default_factory=dict)
    """Per charger, the phase setting decided (1 or its wired count)."""


class PoolDistributor:
    """The distributor of one pool, tuned by the config's `[distribution]` section."""

    def __init__(self, section: DistributionSection) -> None:
        self.runs = 0  # distributions run so far
        self._distributor = Distributor(
            DistributionConfig(
                min_current=section.min_current,
                initial_current=section.initial_current,
                nominal_voltage=section.nominal_voltage,
                min_on_time=section.min_on_time,
                min_off_time=section.min_off_time,
                ramp_up_rate=section.ramp_up_rate,
                rotation_period=section.rotation_period,
                resume_timeout=section.resume_timeout,
                phase_switch_interval=section.phase_switch_interval,
                phase_switch_hysteresis=section.phase_switch_hysteresis,
            )
        )

    def allocate(
        self,
        target: float,
        chargers: Sequence[ChargerRuntime],
        phase_limit: PhaseLimit | None,
        now: float,
    ) -> PoolAllocation:
        """One distribution: the limit for every charger of the pool."""
        self.runs += 1
        states = [charger_state(charger, now) for charger in chargers]
        allocation = self._distributor.distribute(target, states, phase_limit, now)
        decisions = allocation.decisions
        limits = allocation.limits
        unreachable = None
        if target > 0 and not any(limits.values()):
            blocked = allocation.blocked
            waiting = sorted({decisions[cid].reason for cid in blocked})
            unreachable = f"target {target:.0f} W cannot be delivered: " + (
                "; ".join(waiting) if waiting else "no EV can take power now"
            )
        return PoolAllocation(
            limits=limits,
            power={cid: decision.power for cid, decision in decisions.items()},
            reasons={cid: decision.reason for cid, decision in decisions.items()},
            phase_currents=allocation.phase_currents.as_tuple(),
            unreachable_reason=unreachable,
            resume={cid: str(state) for cid, state in allocation.resume.items()},
            phases=allocation.phases,
        )


def charger_state(charger: ChargerRuntime, now: float) -> ChargerState:
    """One charger as the distributor sees it now."""
    capabilities = charger.capabilities
    return ChargerState(
        charger_id=charger.id,
        phases=capabilities.phases,
        max_current=capabilities.max_current,
        min_current=capabilities.min_current,
        step=capabilities.step,
        ev_phases=capabilities.ev_phases,
        sample=charger.latest,
        fresh=charger.fresh(now),
        status=charger.status(now),
        phase_switching=capabilities.phase_switching and charger.config.phase_switching,
        phases_in_use=charger.phases_in_use,
        switching=charger.switching,
    )


def as_written(
    allocation: PoolAllocation,
    chargers: list[ChargerRuntime],
    outcomes: Mapping[str, WriteOutcome],
) -> PoolAllocation:
    """The allocation as the chargers hold it: each limit as written (rounded to the
    charger's step), its power scaled to match. A failed write keeps the decided limit
    and power, reported as failed."""
    limits: dict[str, float] = {}
    power: dict[str, float] = {}
    for charger in chargers:
        cid = charger.id
        decided = allocation.limits[cid]
        estimate = allocation.power.get(cid, 0.0)
        outcome = outcomes.get(cid)
        held = charger.commanded
        if (outcome is not None and not outcome.ok) or held is None:
            limits[cid], power[cid] = decided, estimate
        else:
            limits[cid] = held
            power[cid] = estimate * held / decided if decided > 0 else 0.0
    return PoolAllocation(
        limits=limits,
        power=power,
        reasons=allocation.reasons,
        phase_currents=allocation.phase_currents,
        unreachable_reason=allocation.unreachable_reason,
        resume=allocation.resume,
    )


def distribution_inputs(
    target: float, limit: object, chargers: Sequence[ChargerRuntime], now: float
) -> tuple[object, ...]:
    """What a distribution decides from, as a key to compare.

    The target, the phase limit, and per charger: freshness, status, phase setting,
    switch under way, plug and component state, and measured current per terminal
    rounded to 0.1 A (readings jitter; the distributor's thresholds are 0.5 A and
    more). Voltage is left out: it moves the power estimate by a fraction of a percent,
    and the next recheck takes it in. The limits written are the distribution's own
    output; a failed write shows in the charger's status.
    """
    key: list[object] = [target, limit]
    for charger in chargers:
        sample = charger.latest
        measured: object = None
        if sample is not None:
            p1, p2, p3 = sample.current.as_tuple()
            measured = (
                sample.cable_state,
                sample.component_state,
                round(p1, 1),
                round(p2, 1),
                round(p3, 1),
            )
        key.append(
            (
                charger.fresh(now),
                charger.status(now),
                charger.phases_in_use,
                charger.switching,
                measured,
            )
        )
    return tuple(key)


@dataclass(slots=True)
class Recheck:
    """Whether a pool's distribution is due: when its inputs changed since the last one,
    or `interval` seconds after it (time alone moves the distributor's timers: ramps,
    min on/off times, rotation, wake-ups). `interval` 0: always due.

    The distributor is built for calls seconds apart (it accounts the time elapsed
    between two calls), so a quiet site distributes every `interval` and a busy one at
    every tick, with the same decisions up to that delay on a timer.
    """

    interval: float
    _last: tuple[object, ...] | None = None
    _at: float = float("-inf")

    def due(self, inputs: tuple[object, ...], now: float) -> bool:
        """True when a distribution is to run now; the caller then calls `ran`."""
        return self.interval <= 0 or inputs != self._last or now - self._at >= self.interval

    def ran(self, inputs: tuple[object, ...], now: float) -> None:
        self._last, self._at = inputs, now

    def forget(self) -> None:
        """The next call is due whatever the inputs (after a failed write, say)."""
        self._last = None
