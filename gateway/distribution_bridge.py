"""Feeds a pool's chargers into the distributor and reads its allocation back.

The distributor (`gateway.distribution`) is pure and knows nothing of the config or
the status tracker; this module turns config, latest samples and statuses into its
`ChargerState`s, and its `Allocation` into what the controller writes and reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.config import ChargerConfig, GatewayConfig
from gateway.core.model import ChargerSample
from gateway.core.status import ChargerStatus
from gateway.distribution import ChargerState, DistributionConfig, Distributor


@dataclass(frozen=True, slots=True)
class DistributionInput:
    """One charger at one distribution: its config, latest sample and status."""

    charger: ChargerConfig
    sample: ChargerSample | None
    status: ChargerStatus
    commanded: float | None
    step: float = 0.1


@dataclass(frozen=True, slots=True)
class PoolAllocation:
    """Limits to write (A per phase), their estimated power (W) and the reasons."""

    limits: dict[str, float]
    power: dict[str, float]
    reasons: dict[str, str]
    phase_currents: tuple[float, float, float]
    unreachable_reason: str | None


class PoolDistributor:
    """The distributor of one pool, configured from the gateway config."""

    def __init__(self, config: GatewayConfig, charger_ids: Sequence[str]) -> None:
        section = config.distribution
        self._config = config
        self._charger_ids = list(charger_ids)
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
        inputs: Sequence[DistributionInput],
        phase_limit: float | None,
        now: float,
        max_data_age: float | None = None,
    ) -> PoolAllocation:
        """One distribution: the limit for every charger of the pool."""
        age = self._config.power.max_data_age if max_data_age is None else max_data_age
        states = [_state(item, now, age) for item in inputs]
        allocation = self._distributor.distribute(target, states, phase_limit, now)
        limits = allocation.limits
        power = {cid: decision.power for cid, decision in allocation.decisions.items()}
        reasons = {cid: decision.reason for cid, decision in allocation.decisions.items()}
        unreachable = None
        if target > 0 and not any(limits.values()):
            waiting = [r for r in reasons.values() if "wait" in r or "minimum" in r]
            unreachable = f"target {target:.0f} W cannot be delivered: " + (
                "; ".join(sorted(set(waiting))) if waiting else "no EV can take power now"
            )
        return PoolAllocation(
            limits=limits,
            power=power,
            reasons=reasons,
            phase_currents=allocation.phase_currents.as_tuple(),
            unreachable_reason=unreachable,
        )


def _state(item: DistributionInput, now: float, max_data_age: float) -> ChargerState:
    sample = item.sample
    fresh = sample is not None and now - sample.timestamp <= max_data_age
    return ChargerState(
        charger_id=item.charger.id,
        phases=tuple(item.charger.phases),
        max_current=item.charger.max_current,
        step=item.step,
        ev_phases=item.charger.ev_phases,
        sample=sample,
        fresh=fresh,
        status=item.status,
    )
