"""The SDK-like benchmark baseline reproduces the SDK's decision table.

The benchmark is only as honest as its baseline: these rows are the SDK's EV
distribution run on synthetic states (V = 230 V: 10 A = 6900 W, 6 A = 4140 W, upper
bound 11040 W).
"""

from __future__ import annotations

import pytest

from benchmarks.sdk_baseline import SdkLikeDistributor
from gateway.core.model import Bounds, CableState, ChargerSample, ComponentState, Phases
from gateway.distribution import ChargerState

UPPER = 11040.0


def manager(target: float, allocations: dict[str, float], measured: dict[str, float] | None = None,
            *, since: float = 0.0, connected: bool = True) -> SdkLikeDistributor:  # fmt: skip
    """A baseline with chargers already registered at the given allocations."""
    sdk = SdkLikeDistributor()
    sdk.target = target
    for cid, allocation in allocations.items():
        sdk.on_data(cid, connected, (measured or {}).get(cid, 0.0), UPPER, since)
        sdk.chargers[cid].allocation = allocation
    return sdk


def changes(sdk: SdkLikeDistributor, before: dict[str, float]) -> dict[str, float]:
    return {cid: c.allocation for cid, c in sdk.chargers.items() if c.allocation != before.get(cid)}


@pytest.mark.parametrize(
    ("target", "others", "expected"),
    [
        (10000.0, {}, 6900.0),  # new EV, plenty available
        (10000.0, {"other": 6900.0}, 0.0),  # little left: nothing, nobody throttled
        (12000.0, {"other": 6900.0}, 4140.0),  # medium left: the minimum
        (6900.0, {}, 4140.0),  # strictly greater than 6900 needed for 10 A
        (6901.0, {}, 6900.0),
        (4140.0, {}, 0.0),
        (4141.0, {}, 4140.0),
    ],
)
def test_new_ev_allocation(target: float, others: dict[str, float], expected: float) -> None:
    sdk = manager(target, {**others, "new": 0.0}, connected=False)
    sdk.on_data("new", True, 0.0, UPPER, 10.0)  # newly connected: no 60 s wait
    assert sdk.chargers["new"].allocation == expected


@pytest.mark.parametrize(
    ("elapsed", "target", "upper", "expected"),
    [
        (30.0, 20000.0, UPPER, 6900.0),  # within the interval: nothing
        (61.0, 20000.0, UPPER, 11040.0),  # one step straight to the upper bound
        (61.0, 8000.0, UPPER, 8000.0),  # capped by the target
        (61.0, 20000.0, 7000.0, 7000.0),  # the upper bound shrank
    ],
)
def test_increase_once_per_interval(
    elapsed: float, target: float, upper: float, expected: float
) -> None:
    sdk = manager(target, {"a": 6900.0})
    sdk.on_data("a", True, 6900.0, upper, elapsed)
    assert sdk.chargers["a"].allocation == expected


def test_unplugged_charger_is_set_to_zero() -> None:
    sdk = manager(20000.0, {"a": 6900.0})
    sdk.on_data("a", False, 0.0, UPPER, 5.0)
    assert sdk.chargers["a"].allocation == 0.0


def test_unplugged_idle_bug_is_reproduced() -> None:
    sdk = manager(20000.0, {"a": 0.0}, connected=False)
    sdk.on_data("a", False, 0.0, UPPER, 61.0)
    assert sdk.chargers["a"].allocation == 6900.0
    sdk.on_data("a", False, 0.0, UPPER, 62.0)
    assert sdk.chargers["a"].allocation == 0.0


THREE = {"1": 11040.0, "2": 11040.0, "3": 6900.0}
MEASURED = {"1": 11000.0, "2": 7000.0, "3": 4000.0}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (15000.0, {"1": 4140.0, "2": 4140.0}),  # level 1
        (5000.0, {"1": 0.0, "2": 0.0}),  # level 2: EV 3 keeps 6900 above the target
        (0.0, {"1": 0.0, "2": 0.0, "3": 0.0}),
        (21000.0, {"1": 4140.0}),  # 6860 W removed to save 1000 W
    ],
)
def test_throttling(target: float, expected: dict[str, float]) -> None:
    sdk = manager(0.0, THREE, MEASURED)
    sdk.on_request(target, 100.0)
    assert changes(sdk, THREE) == expected


def test_throttling_leaves_an_idle_allocation() -> None:
    allocations = {"1": 11040.0, "2": 6900.0}
    sdk = manager(0.0, allocations, {"1": 0.0, "2": 3000.0})
    sdk.on_request(1000.0, 100.0)
    assert changes(sdk, allocations) == {"2": 0.0}


@pytest.mark.parametrize(("target", "expected"), [(25000.0, {"2": 7060.0}), (20000.0, {"2": 0.0})])
def test_deallocation(target: float, expected: dict[str, float]) -> None:
    allocations = {"1": 11040.0, "2": 11040.0, "3": 6900.0}
    sdk = manager(0.0, allocations, {"1": 10000.0, "2": 2000.0, "3": 6900.0})
    sdk.on_request(target, 100.0)
    assert changes(sdk, allocations) == expected


def test_first_message_waits_a_minute_and_limits_are_power_over_three_phases() -> None:
    """Through `distribute`: registered at 0, allocated 10 A worth after 60 s, as A/phase."""
    plugged = ChargerState(
        "a",
        (1,),
        32.0,
        sample=ChargerSample(
            0.0,
            0.0,
            Phases(),
            Phases(230.0, 230.0, 230.0),
            None,
            CableState.EV_LOCKED,
            ComponentState.READY,
            None,
            Bounds(0.0, UPPER),
        ),
    )
    sdk = SdkLikeDistributor()
    assert sdk.distribute(10000.0, [plugged], 16.0, 0.0) == {"a": 0.0}
    assert sdk.distribute(10000.0, [plugged], 16.0, 30.0) == {"a": 0.0}
    # 6900 W for a single-phase charger is still 10 A "per phase": the 3-phase assumption.
    assert sdk.distribute(10000.0, [plugged], 16.0, 61.0) == {"a": pytest.approx(10.0)}
