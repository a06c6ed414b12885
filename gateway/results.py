"""Distribution results (the MQTT "distribution result"), from what the writes really did.

Unlike the Frequenz SDK, `succeeded_power` is the power of the limits that chargers
accepted (as written, rounded to each charger's step), not the pool target, and one
result covers one whole distribution. `current_limits` are the limits as written;
null where a write failed and the charger's limit is unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.chargers import WriteOutcome
from gateway.distribution_bridge import PoolAllocation
from gateway.mqtt.payloads import amps, watts
from gateway.timefmt import rfc3339

ResultType = Literal["success", "partial_failure", "error", "out_of_bounds"]


@dataclass(frozen=True, slots=True)
class DistributionResult:
    """One distribution: the request, and which chargers took which power."""

    timestamp: float
    result: ResultType
    request_power: float
    component_ids: tuple[str, ...]
    succeeded_power: float
    succeeded_components: tuple[str, ...]
    failed_power: float
    failed_components: tuple[str, ...]
    excess_power: float
    message: str
    limits: dict[str, float | None] = field(default_factory=dict)
    ev_resume: dict[str, str] = field(default_factory=dict)
    """Per charger: "ok", "waking" (it drew nothing after a start; wake-up toggles
    under way) or "stalled" (every wake-up failed); see `ResumeState`."""

    def payload(self) -> dict[str, Any]:
        return {
            "timestamp": rfc3339(self.timestamp),
            "result": self.result,
            "request": {
                "power": watts(self.request_power),
                "component_ids": list(self.component_ids),
            },
            "succeeded_power": watts(self.succeeded_power),
            "succeeded_components": list(self.succeeded_components),
            "failed_power": watts(self.failed_power),
            "failed_components": list(self.failed_components),
            "excess_power": watts(self.excess_power),
            "current_limits": {cid: amps(limit) for cid, limit in self.limits.items()},
            "ev_resume": self.ev_resume,
            "message": self.message,
        }


def build_result(
    now: float,
    target: float,
    component_ids: list[str],
    allocation: PoolAllocation,
    outcomes: Mapping[str, WriteOutcome],
    ev_resume: Mapping[str, str] | None = None,
) -> DistributionResult:
    """Classify a distribution from its allocation and the write outcomes.

    `ev_resume` is `Allocation.resume` (charger id -> "ok" / "waking" / "stalled").
    """
    failed = sorted(cid for cid, outcome in outcomes.items() if not outcome.ok)
    unwritten = set(failed)
    succeeded = sorted(cid for cid in allocation.limits if cid not in unwritten)
    succeeded_power = sum(allocation.power[cid] for cid in succeeded)
    failed_power = sum(allocation.power[cid] for cid in failed)
    allocated = succeeded_power + failed_power
    excess = max(0.0, target - allocated)
    result: ResultType
    if failed and not succeeded:
        result, message = "error", _failures(failed, outcomes)
    elif failed:
        result, message = "partial_failure", _failures(failed, outcomes)
    elif target > 0 and allocated == 0 and allocation.unreachable_reason:
        result, message = "out_of_bounds", allocation.unreachable_reason
    else:
        result = "success"
        message = f"{allocated:.0f} W of {target:.0f} W set on {len(succeeded)} charger(s)"
    return DistributionResult(
        timestamp=now,
        result=result,
        request_power=target,
        component_ids=tuple(component_ids),
        succeeded_power=succeeded_power,
        succeeded_components=tuple(succeeded),
        failed_power=failed_power,
        failed_components=tuple(failed),
        excess_power=excess,
        message=message,
        limits={cid: None if cid in failed else amps for cid, amps in allocation.limits.items()},
        ev_resume={cid: str(state) for cid, state in (ev_resume or {}).items()},
    )


def _failures(failed: list[str], outcomes: Mapping[str, WriteOutcome]) -> str:
    return "; ".join(f"{cid}: {outcomes[cid].error}" for cid in failed)
