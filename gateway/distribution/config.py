"""Tuning of the EV power distributor, with the reasons behind each default.

Every value is in A or seconds. The names that also exist in the gateway's TOML
`[distribution]` section (`min_current`, `initial_current`, `nominal_voltage`,
`min_on_time`, `min_off_time`, `ramp_up_rate`, `rotation_period`, `resume_timeout`)
mean the same thing there.

The trade-off between fairness hour by hour and few pauses is `rotation_period`.
Every pause is a contactor cycle and a chance that the EV does not resume, so the
default (2 h) lets EVs take turns in long slots: over a night or a working day each
EV gets its share, with one or two pauses per EV at most in a crowded car park.
Lower it (e.g. 900 s) where waiting an hour matters more than pausing often.

"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class DistributionConfig:
    """How the distributor shares current; defaults suit a home or office car park.

    Attributes:
        min_current: Lowest current (A per phase) an EV may be given other than 0.
            IEC 61851 forbids a pilot below 6 A, so an EV is either paused or gets this.
            A charger may raise it for itself (`ChargerState.min_current`).
        initial_current: Ceiling of a newly admitted EV's first limit (A). Unlike the
            Frequenz SDK, this is not a power reservation handed out whenever 10 A is
            free: a new EV gets its fair share, at least `min_current` and at most
            this, and then ramps like any other. It is never given to an empty charger.
        nominal_voltage: Voltage (V) assumed when a charger reports none; used only to
            estimate power against the target, never for the fuse (which is in A).
        min_on_time: Seconds an EV keeps charging once started before it may be paused
            for rotation or idleness (OpenEMS uses 120 s; many EVs sleep if toggled
            faster). A cut needed to meet the target or the fuse ignores it.
        min_off_time: Seconds an EV stays paused before it may start again.
        ramp_up_rate: Fastest rise of one charger's limit (A per second). Increases
            are gradual so that a measurement can confirm the headroom before more is
            given; decreases always apply at once.
        rotation_period: The fairness/pauses trade-off (s). When not every EV fits at
            its minimum, EVs take turns: an EV that has charged this long since it
            (re)started yields its place to a waiting EV, but only to one that has
            waited this much longer than it over the whole session (hysteresis on the
            time deficit). An EV that was once seen not to resume is never rotated out.
            Default 2 h: a home or depot wants few pauses and a fair night.
        resume_timeout: Seconds an EV that was (re)started - or cut below what it
            was drawing - may draw nothing before it counts as not resuming: it is
            then woken (`wake_pause`, `wake_attempts`) and marked in the decision.
        wake_pause: Seconds the limit stays at 0 during a wake-up toggle
            (0 -> minimum -> 0 -> minimum, the sequence many EVs need after a sleep).
        wake_attempts: Wake-up toggles tried before an EV is marked stalled. From
            the second one on, the minimum offered rises by `wake_raise` each time,
            for EVs that draw nothing below some current (e.g. 8 A on 3 phases).
        wake_raise: Current (A) added to the offered minimum per further wake-up.
        reclaim_threshold: An EV drawing this much (A) below its limit for
            `reclaim_delay` seconds is capped at its draw plus `reclaim_margin`.
        reclaim_delay: Seconds the shortfall must last (an EV needs time to follow a
            raised limit, so a short shortfall is not a full battery).
        reclaim_margin: Current (A) left above a reclaimed EV's draw.
        probe_band: A capped EV drawing within this much (A) of its limit is trusted
            to want more: its cap is lifted and it ramps up again.
        idle_timeout: Seconds an admitted EV may draw nothing before it counts as
            idle (full or asleep) and yields its place to EVs that draw.
        idle_probe_period: Seconds after which an idle EV is offered power again, in
            case it woke up (a departure timer, a preconditioning run).
        active_current: A phase carrying more than this (A) counts as used by the EV.
    """

    min_current: float = 6.0
    initial_current: float = 10.0
    nominal_voltage: float = 230.0
    min_on_time: float = 60.0
    min_off_time: float = 30.0
    ramp_up_rate: float = 2.0
    rotation_period: float = 7200.0
    resume_timeout: float = 60.0
    wake_pause: float = 10.0
    wake_attempts: int = 3
    wake_raise: float = 2.0
    reclaim_threshold: float = 2.0
    reclaim_delay: float = 60.0
    reclaim_margin: float = 1.0
    probe_band: float = 0.5
    idle_timeout: float = 300.0
    idle_probe_period: float = 1800.0
    active_current: float = 0.5

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{field.name}: must be a finite number >= 0, got {value!r}")
        if self.min_current <= 0:
            raise ValueError(f"min_current: must be > 0 A, got {self.min_current!r}")
        if self.nominal_voltage <= 0:
            raise ValueError(f"nominal_voltage: must be > 0 V, got {self.nominal_voltage!r}")
        if self.ramp_up_rate <= 0:
            raise ValueError(f"ramp_up_rate: must be > 0 A/s, got {self.ramp_up_rate!r}")
        if self.initial_current < self.min_current:
            raise ValueError(
                f"initial_current: must be >= min_current ({self.min_current} A), "
                f"got {self.initial_current!r}"
            )
        if self.reclaim_margin >= self.reclaim_threshold:
            raise ValueError(
                "reclaim_margin: must be below reclaim_threshold, or a reclaimed EV "
                "would be reclaimed again at once"
            )
