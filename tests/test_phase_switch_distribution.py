"""The distributor's 1-phase/3-phase decisions (gateway.distribution.phases): when an
EV moves to one phase, when it comes back, the interval between switches, and the
per-phase accounting of a 1-phase EV during and after a switch."""

from __future__ import annotations

import dataclasses

from gateway.distribution import ChargerState, DecisionCode, DistributionConfig, Distributor
from tests.test_distribution import charger

CONFIG = DistributionConfig(ramp_up_rate=100.0, initial_current=32.0, phase_switch_interval=300.0)
ONE_PHASE_6A = 6.0 * 230.0
THREE_PHASE_6A = 3 * ONE_PHASE_6A


def switchable(cid: str = "bay", setting: int = 3, **kwargs: object) -> ChargerState:
    """A switchable 3-phase charger whose 3-phase EV draws `currents`."""
    return charger(cid, max_current=16.0, phase_switching=True, phases_in_use=setting, **kwargs)


def test_a_share_below_the_three_phase_minimum_moves_the_ev_to_one_phase() -> None:
    distributor = Distributor(CONFIG)
    allocation = distributor.distribute(2500.0, [switchable()], None, now=0.0)
    decision = allocation.decisions["bay"]
    assert decision.phases == 1
    assert 6.0 <= decision.current <= 2500.0 / 230.0
    assert decision.grid_phases == (1,)
    assert allocation.phase_currents.as_tuple() == (decision.current, 0.0, 0.0)
    assert "switch to 1 phase" in decision.reason


def test_without_switching_the_same_ev_waits() -> None:
    allocation = Distributor(CONFIG).distribute(2500.0, [charger("bay", max_current=16.0)],
                                                None, now=0.0)  # fmt: skip
    decision = allocation.decisions["bay"]
    assert decision.current == 0.0 and decision.phases == 3
    assert decision.code == DecisionCode.WAITING


def test_an_ev_that_fits_on_three_phases_is_not_switched() -> None:
    allocation = Distributor(CONFIG).distribute(8000.0, [switchable()], None, now=0.0)
    assert allocation.decisions["bay"].phases == 3
    assert allocation.decisions["bay"].current >= 6.0


def test_a_one_phase_ev_is_never_switched() -> None:
    distributor = Distributor(CONFIG)
    distributor.distribute(1000.0, [switchable(currents=(7.0, 0.0, 0.0))], None, now=0.0)
    allocation = distributor.distribute(1000.0, [switchable(currents=(7.0, 0.0, 0.0))], None, 5.0)
    assert allocation.decisions["bay"].phases == 3  # the EV draws on L1 only anyway


def test_during_the_switch_its_coming_limit_is_reserved_on_its_l1_only() -> None:
    distributor = Distributor(CONFIG)
    first = distributor.distribute(2500.0, [switchable()], 20.0, now=0.0)
    amps = first["bay"]
    other = charger("other", max_current=32.0)
    during = distributor.distribute(30000.0, [switchable(switching=True), other], 20.0, now=5.0)
    held = during.decisions["bay"]
    assert held.code == DecisionCode.PHASE_SWITCH and not held.controlled
    assert held.reserved.as_tuple() == (amps, 0.0, 0.0)
    assert during["other"] <= 20.0 - amps + 1e-9  # the fuse holds on L1
    assert during.phase_currents.as_tuple()[0] <= 20.0 + 1e-9


def test_after_the_switch_it_charges_on_one_phase_and_comes_back_with_hysteresis() -> None:
    distributor = Distributor(CONFIG)
    distributor.distribute(2500.0, [switchable()], None, now=0.0)
    one = switchable(setting=1, currents=(10.0, 0.0, 0.0))
    after = distributor.distribute(2500.0, [one], None, now=10.0)
    assert after.decisions["bay"].phases == 1 and after.decisions["bay"].grid_phases == (1,)
    # a target just at the 3-phase minimum: not enough above it, stays on one phase
    at_max = switchable(setting=1, currents=(16.0, 0.0, 0.0))
    edge = distributor.distribute(THREE_PHASE_6A + 100.0, [at_max], None, now=400.0)
    assert edge.decisions["bay"].phases == 1
    # plenty: back to three phases (the interval has passed)
    back = distributor.distribute(11000.0, [at_max], None, now=410.0)
    decision = back.decisions["bay"]
    assert decision.phases == 3 and decision.grid_phases == (1, 2, 3)
    assert decision.current >= 6.0 + CONFIG.phase_switch_hysteresis
    assert "switch to 3 phases" in decision.reason


def test_no_switch_back_before_the_interval() -> None:
    distributor = Distributor(CONFIG)
    distributor.distribute(2500.0, [switchable()], None, now=0.0)
    at_max = switchable(setting=1, currents=(16.0, 0.0, 0.0))
    soon = distributor.distribute(11000.0, [at_max], None, now=100.0)
    assert soon.decisions["bay"].phases == 1
    later = distributor.distribute(11000.0, [at_max], None, now=301.0)
    assert later.decisions["bay"].phases == 3


def test_a_failed_switch_keeps_the_old_setting_and_waits_for_the_interval() -> None:
    distributor = Distributor(CONFIG)
    assert distributor.distribute(2500.0, [switchable()], None, now=0.0).phases["bay"] == 1
    # the switch never happened (the charger still says 3): no retry before 300 s
    again = distributor.distribute(2500.0, [switchable()], None, now=10.0)
    assert again.phases["bay"] == 3 and again["bay"] == 0.0
    assert distributor.distribute(2500.0, [switchable()], None, now=301.0).phases["bay"] == 1


def test_an_empty_switched_charger_goes_back_to_three_phases() -> None:
    empty = dataclasses.replace(switchable(setting=1, plugged=False))
    allocation = Distributor(CONFIG).distribute(5000.0, [empty], None, now=0.0)
    assert allocation.phases["bay"] == 3 and allocation["bay"] == 0.0


def test_the_fuse_holds_with_two_switched_evs_on_one_grid_phase() -> None:
    distributor = Distributor(CONFIG)
    bays = [switchable("a"), switchable("b"), switchable("c")]
    allocation = distributor.distribute(6000.0, bays, 10.0, now=0.0)
    # 10 A on L1 holds one 1-phase EV at 6 A; the rest wait
    assert allocation.phase_currents.as_tuple()[0] <= 10.0 + 1e-9
    assert sum(1 for d in allocation.decisions.values() if d.current > 0) == 1
    assert allocation.power <= 6000.0 + 1e-6


def test_switching_needs_three_wired_phases() -> None:
    try:
        ChargerState("x", (1,), 16.0, phase_switching=True)
    except ValueError as exc:
        assert "three wired phases" in str(exc)
    else:
        raise AssertionError("a 1-phase charger was allowed to switch")


def test_an_ev_still_drawing_on_three_phases_during_the_switch_is_reserved_on_all() -> None:
    distributor = Distributor(CONFIG)
    amps = distributor.distribute(2500.0, [switchable()], 20.0, now=0.0)["bay"]
    stuck = switchable(switching=True, currents=(10.0, 10.0, 10.0))  # did not stop
    during = distributor.distribute(30000.0, [stuck, charger("other")], 20.0, now=5.0)
    assert during.decisions["bay"].reserved.as_tuple() == (max(amps, 10.0),) * 3
    assert max(during.phase_currents.as_tuple()) <= 20.0 + 1e-9
