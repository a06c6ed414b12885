"""Feeds a pool's chargers into the distributor and reads its allocation back.

The distributor (`gateway.distribution`) is pure and knows nothing of the config or of
the chargers' runtimes; this module turns each `ChargerRuntime` (its capabilities,
latest sample, freshness and status) into the distributor's `ChargerState`, and the
`Allocation` into what the controller writes and reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.chargers import ChargerRuntime
from gateway.config import DistributionConfig as DistributionSection
from gateway.distribution import ChargerState, DistributionConfig, Distributor


@dataclass(frozen=True, slots=True)
class PoolAllocation:
    """Limits to write (A per phase), their estimated power (W) and the reasons."""

    limits: dict[str, float]
    power: dict[str, float]
    reasons: dict[str, str]
    phase_currents: tuple[float, float, float]
    unreachable_reason: str | None
    resume: dict[str, str] = field(default_factory=dict)


class PoolDistributor:
    """The distributor of one pool, tuned by the config's `[distribution]` section."""

    def __init__(self, section: DistributionSection) -> None:
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
            )
        )

    def allocate(
        self,
        target: float,
        chargers: Sequence[ChargerRuntime],
        phase_limit: float | None,
        now: float,
    ) -> PoolAllocation:
        """One distribution: the limit for every charger of the pool."""
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
    )
