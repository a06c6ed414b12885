"""EVs that do not resume, rotation with few pauses, and the distributor's typed API.

Pure tests on an injected clock: a simulated EV answers each call's limit.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from gateway.core.status import ChargerStatus
from gateway.distribution import ChargerState, DecisionCode, DistributionConfig, Distributor
from gateway.distribution.model import ResumeState
from gateway.results import WriteOutcome, build_result
from tests.test_distribution import charger

FAST = DistributionConfig(ramp_up_rate=100.0, initial_current=32.0)


def test_sleepy_ev_is_marked_woken_by_a_toggle_and_not_rotated_out() -> None:
    """An EV that ignores a start is toggled 0 -> min once and then draws."""
    config = DistributionConfig(ramp_up_rate=100.0, resume_timeout=30.0, wake_pause=10.0)
    distributor = Distributor(config)
    limits: list[float] = []
    resumes: list[ResumeState] = []
    asleep, toggled = True, 0
    draw = 0.0
    for tick in range(0, 300, 5):
        allocation = distributor.distribute(1e9, [charger("ev", currents=(draw,) * 3)], None, tick)
        limit = allocation["ev"]
        if asleep and limits and (limits[-1] > 0) != (limit > 0):
            toggled += 1  # the EV wakes on 0 -> on after an offer it ignored
            asleep = toggled < 2
        draw = 0.0 if asleep else limit
        limits.append(limit)
        resumes.append(allocation.decisions["ev"].resume)
    assert limits[0] > 0  # started
    assert 0.0 in limits[1:]  # the toggle's 0
    assert ResumeState.WAKING in resumes
    off = limits.index(0.0)
    assert all(limit > 0 for limit in limits[off + 3 :])  # on again, and it stays on
    assert resumes[-1] == ResumeState.OK and not asleep
    assert allocation.decisions["ev"].code != DecisionCode.WAKING


def test_ev_that_never_draws_is_stalled_after_the_wake_attempts() -> None:
    config = DistributionConfig(resume_timeout=20.0, wake_pause=5.0, wake_attempts=2)
    distributor = Distributor(config)
    seen: list[tuple[float, DecisionCode, ResumeState]] = []
    for tick in range(0, 200, 5):
        allocation = distributor.distribute(1e9, [charger("ev")], 32.0, float(tick))
        decision = allocation.decisions["ev"]
        seen.append((decision.current, decision.code, decision.resume))
    zeros = [index for index, (amps, _, _) in enumerate(seen) if amps == 0.0]
    assert zeros and all(seen[i][1] == DecisionCode.WAKING for i in zeros)
    assert len({i for i in zeros if i - 1 not in zeros}) == 2  # two toggles
    assert seen[-1][2] == ResumeState.STALLED
    assert allocation.resume == {"ev": ResumeState.STALLED}
    assert "stalled" in allocation.reason("ev")
    # The second toggle offered a higher minimum (an EV that needs more than 6 A).
    assert max(amps for amps, _, _ in seen[zeros[-1] :]) >= 6.0


def test_ev_with_a_higher_minimum_gets_it_without_a_pause() -> None:
    """EV a stops drawing when its share falls to 7.5 A: its minimum rises, no pause."""
    config = DistributionConfig(
        ramp_up_rate=100.0, resume_timeout=20.0, initial_current=32.0, wake_raise=1.0
    )
    distributor = Distributor(config)
    limits = distributor.distribute(1e9, [charger("a"), charger("b")], 20.0, 0.0).limits
    history = []
    for tick in range(5, 120, 5):
        fuse = 20.0 if tick < 10 else 15.0
        draw_a = limits["a"] if limits["a"] >= 8.0 else 0.0  # this EV needs 8 A
        evs = [charger("a", currents=(draw_a,) * 3), charger("b", currents=(limits["b"],) * 3)]
        allocation = distributor.distribute(1e9, evs, fuse, float(tick))
        limits = allocation.limits
        history.append(limits)
    assert history[1] == {"a": 7.5, "b": 7.5}
    assert all(step["a"] > 0 and step["b"] > 0 for step in history)
    assert limits == {"a": 8.5, "b": 6.5}
    assert allocation.decisions["a"].resume == ResumeState.OK


def test_rotation_is_rare_and_every_ev_gets_a_turn() -> None:
    """Four EVs, room for two, 8 h: each charges, with at most 4 pauses per EV."""
    distributor = Distributor(DistributionConfig())
    names = ["a", "b", "c", "d"]
    limits = dict.fromkeys(names, 0.0)
    charged = dict.fromkeys(names, 0.0)
    switches = dict.fromkeys(names, 0)
    for tick in range(0, 8 * 3600, 30):
        evs = [charger(n, currents=(limits[n],) * 3) for n in names]
        allocation = distributor.distribute(1e9, evs, 13.0, float(tick))
        for n in names:
            if tick and (allocation[n] > 0) != (limits[n] > 0):
                switches[n] += 1
            charged[n] += 30.0 if allocation[n] > 0 else 0.0
        limits = allocation.limits
        assert sum(1 for v in limits.values() if v > 0) <= 2
    assert min(charged.values()) >= 0.35 * 8 * 3600
    assert max(switches.values()) <= 4


def test_one_amp_steps_reach_the_target_within_one_step() -> None:
    """Current freed by rounding down goes to other EVs: the pool misses < 1 step."""
    distributor = Distributor(FAST)
    evs = [
        charger(f"s{i}", phases, step=1.0)
        for i, phases in enumerate([(1, 2, 3), (2, 3, 1), (3,), (1,), (2, 3, 1)])
    ]
    for now, target in enumerate((11_111.0, 23_456.0, 30_001.0)):
        allocation = distributor.distribute(target, evs, None, float(now))
        assert all(float(amps).is_integer() for amps in allocation.limits.values())
        assert target - 3 * 230.0 < allocation.power <= target


def test_per_phase_limit_tuple() -> None:
    distributor = Distributor(FAST)
    evs = [charger("a", (1, 2, 3)), charger("b", (2,)), charger("c", (3,))]
    allocation = distributor.distribute(1e9, evs, (10.0, 20.0, 32.0), 0.0)
    totals = allocation.phase_currents.as_tuple()
    assert totals[0] <= 10.0 and totals[1] <= 20.0 and totals[2] <= 32.0
    assert allocation["a"] == 10.0 and allocation["b"] == 10.0 and allocation["c"] == 22.0
    assert allocation.phase_limit == (10.0, 20.0, 32.0)
    with pytest.raises(ValueError, match="phase_limit"):
        distributor.distribute(1e9, evs, (10.0, 20.0), 0.0)  # type: ignore[arg-type]


def test_status_is_the_enum_and_strings_are_converted() -> None:
    state = ChargerState("a", (1,), 16.0, status="uncertain")  # type: ignore[arg-type]
    assert state.status is ChargerStatus.UNCERTAIN
    with pytest.raises(ValueError, match="status must be one of"):
        ChargerState("a", (1,), 16.0, status="broken")  # type: ignore[arg-type]


def test_blocked_says_why_a_positive_target_is_not_delivered() -> None:
    distributor = Distributor(FAST)
    evs: Sequence[ChargerState] = [charger("a"), charger("low", max_current=5.0)]
    allocation = distributor.distribute(1e9, evs, 4.0, 0.0)
    assert allocation.blocked == {
        "a": DecisionCode.WAITING,
        "low": DecisionCode.BELOW_MINIMUM,
    }
    assert distributor.distribute(1e9, [charger("a")], None, 5.0).blocked == {}


def test_distribution_result_carries_ev_resume() -> None:
    from gateway.distribution_bridge import PoolAllocation

    allocation = PoolAllocation({"a": 6.0}, {"a": 4140.0}, {"a": "x"}, (6.0, 6.0, 6.0), None)
    outcomes = {"a": WriteOutcome(True, 6.0, None)}
    result = build_result(0.0, 5000.0, ["a"], allocation, outcomes, {"a": ResumeState.STALLED})
    assert result.payload()["ev_resume"] == {"a": "stalled"}
