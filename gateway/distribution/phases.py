"""1-phase/3-phase switching: when an EV is better off on one phase, and back.

A 3-phase EV cannot charge below its minimum on three phases (6 A x 3 x 230 V =
4.1 kW), while on one phase it charges from 1.4 kW. For chargers that may switch
(`ChargerState.phase_switching`), after the ordinary sharing:

- down to 1 phase: an EV on three phases that gets 0 because its minimum does not fit
  (code WAITING or PAUSED_LIMIT) is tried on its charger's L1; if it is admitted
  there, it switches;
- back to 3 phases: an EV charging on one phase is tried on three phases; it switches
  back when it would get at least its minimum plus `phase_switch_hysteresis` per
  phase and more power than on one phase.

A switch is a pause at 0 A and a contactor cycle, so a charger switches at most once
every `phase_switch_interval` (the first switch of a session may come at once), and
an idle EV is never switched. The trial sharing is the same max-min sharing with the
switched EVs on their new grid phases, so the fuse and the target hold for the
result exactly as for any other: a 1-phase EV loads only its charger's L1 grid phase.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Mapping, Sequence

from gateway.distribution.config import DistributionConfig
from gateway.distribution.model import DecisionCode
from gateway.distribution.sharing import EvView, Outcome

Share = Callable[[Sequence[EvView], Mapping[Hashable, float]], list[Outcome]]
"""The sharing (`sharing.share` with `now` and the config bound)."""

_DOWN = frozenset({DecisionCode.WAITING, DecisionCode.PAUSED_LIMIT})
"""Codes of an EV that gets 0 because its minimum does not fit."""


def switched(ev: EvView, config: DistributionConfig) -> EvView:
    """The EV on its charger's other phase setting, as if (re)started after the pause."""
    assert ev.other is not None
    grid, watts = ev.other
    setting = 1 if ev.setting != 1 else len(ev.state.phases)
    ceiling = max(ev.minimum, min(ev.upper, config.initial_current))
    current = (ev.grid, ev.watts_per_amp)
    return dataclasses.replace(
        ev, grid=grid, watts_per_amp=watts, ceiling=ceiling, setting=setting, other=current
    )


def _may_switch(ev: EvView, now: float, config: DistributionConfig) -> bool:
    if ev.other is None or ev.idle:
        return False
    last = ev.memory.switched_at
    return last is None or now - last >= config.phase_switch_interval


def _candidates(
    evs: Sequence[EvView], outcomes: Sequence[Outcome], now: float, config: DistributionConfig
) -> set[str]:
    """EVs worth trying on their other phase setting."""
    found: set[str] = set()
    for ev, current, code, _ in outcomes:
        if not _may_switch(ev, now, config):
            continue
        down = ev.setting != 1 and current <= 0 and code in _DOWN
        up = ev.setting == 1 and current > 0
        if down or up:
            found.add(ev.key)
    return found


def _better(before: Outcome, after: Outcome, config: DistributionConfig) -> bool:
    """Whether the switched EV (`after`) is better off than unswitched (`before`)."""
    ev, current, _, _ = after
    if ev.setting == 1:  # switched down: it charges at all
        return current >= ev.minimum
    old_power = before[1] * before[0].watts_per_amp
    enough = current >= ev.minimum + config.phase_switch_hysteresis
    return enough and current * ev.watts_per_amp > old_power


def _trial(evs: Sequence[EvView], keys: set[str], config: DistributionConfig) -> list[EvView]:
    return [switched(ev, config) if ev.key in keys else ev for ev in evs]


def switch_phases(
    evs: Sequence[EvView],
    outcomes: list[Outcome],
    capacity: Mapping[Hashable, float],
    share: Share,
    now: float,
    config: DistributionConfig,
) -> tuple[list[Outcome], set[str]]:
    """The outcomes with the phase switches that pay off, and the ids switched.

    `outcomes` is the sharing of `evs` as they are; a switch is kept only when the EV
    is better off and the whole sharing with it still fits every link (it is the same
    sharing, run again with the switched EVs on their new phases).
    """
    keys = _candidates(evs, outcomes, now, config)
    if not keys:
        return outcomes, set()
    before = {outcome[0].key: outcome for outcome in outcomes}
    for _ in range(2):  # all candidates at once; then only those it paid off for
        trial = share(_trial(evs, keys, config), capacity)
        after = {outcome[0].key: outcome for outcome in trial}
        good = {key for key in keys if _better(before[key], after[key], config)}
        if good == keys:
            return _explained(trial, keys), keys
        keys = good
        if not keys:
            break
    return outcomes, set()


def _explained(outcomes: list[Outcome], keys: set[str]) -> list[Outcome]:
    result: list[Outcome] = []
    for ev, current, code, reason in outcomes:
        if ev.key in keys:
            why = (
                "its share on three phases is below the minimum"
                if ev.setting == 1
                else "it can take more on three phases"
            )
            noun = "phase" if ev.setting == 1 else "phases"
            reason = f"switch to {ev.setting} {noun} ({why}); {reason}"
        result.append((ev, current, code, reason))
    return result
