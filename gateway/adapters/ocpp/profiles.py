"""Current limits as charging profiles, for both OCPP versions (pure code).

The gateway limits a charge point with Absolute profiles in amperes per phase:
`TxDefaultProfile` on the charger's connector (EVSE in 2.0.1) first, and the
station-wide maximum (`ChargePointMaxProfile` / `ChargingStationMaxProfile`) on
connector 0 as the fallback for firmwares that refuse the former. Why this shape:
- Amperes per phase with an explicit `numberPhases` are unambiguous for AC; a W
  limit depends on how the charge point assumes the EV's phase count.
- TxDefaultProfile also takes over a running transaction that has no TxProfile,
  needs no transaction id, and outlives transactions, so the limit is in force before
  the next EV plugs in.
- Fixed profile ids make each write replace the previous profile instead of
  stacking new ones.
- `startSchedule` a minute in the past avoids a gap while the charge point swaps the
  old profile for the new one, even with a small clock skew.
- The 1.6 schema allows one decimal (`multipleOf 0.1`); rounding *down* keeps the sum
  of limits under a fuse. The control pilot cannot signal less than 6 A (IEC 61851-1),
  so anything below that becomes 0 (pause).

Fail-safe: two profiles of the same purpose sit on the connector.
- At stack level 0, the **fail-safe**: the charger's `safe_current` (0 A unless
  configured), with no end. Profiles survive reboots, so it stays for good.
- At stack level 1, the **limit**, valid for `limit_validity` (180 s by default; both
  `validTo` and the schedule's `duration` say so) and rewritten every third of that.
  The higher stack level wins while it is valid. When the gateway falls silent, the
  limit lapses within the validity and the charge point falls back to the fail-safe.
  180 s: long enough that two refreshes in a row may be lost (a charge point busy
  for a response timeout or two) and a clock skew of a minute does no harm; short
  enough that a charger of a dead gateway stops following a stale limit within
  three minutes.
A charge point that refuses the fail-safe, or stack level 1, gets the limit at stack
level 0 without an end instead (it stays controlled while the gateway runs, as
before); the charger logs once that it has no fail-safe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

MIN_CURRENT = 6.0
"""The lowest current (A) the control pilot can signal; less than this means 0."""

START_SCHEDULE_LEAD = timedelta(minutes=1)
"""How far in the past `startSchedule` is set, so the new profile applies at once."""

PROFILE_ID_BASE = 0xEB00
"""Profile ids of the gateway start here: high enough not to collide with a backend's."""

FAILSAFE_STACK_LEVEL = 0
LIMIT_STACK_LEVEL = 1


class ProfilePurpose(StrEnum):
    """The two kinds of profile the gateway writes, in the order it tries them."""

    TX_DEFAULT = "TxDefault"
    STATION_MAX = "StationMax"


class ProfileRole(StrEnum):
    """What a profile is for: the fail-safe floor, a bounded limit, or a plain limit."""

    FAILSAFE = "fail-safe"
    LIMIT = "limit"
    UNBOUNDED_LIMIT = "limit without end"


@dataclass(frozen=True, slots=True)
class LimitProfile:
    """One profile to install, independent of the OCPP version that carries it."""

    purpose: ProfilePurpose
    role: ProfileRole
    connector_id: int
    """Connector (1.6) or EVSE (2.0.1) it goes on; 0 for the station-wide maximum."""
    profile_id: int
    stack_level: int
    limit: float
    number_phases: int
    start: datetime
    valid_to: datetime | None = None
    duration: int | None = None
    """Seconds the schedule lasts from `start`; None lasts for ever."""


def round_limit(amps: float, max_current: float) -> float:
    """The limit to write: clamped to [0, max_current], down to 0.1 A, < 6 A -> 0.

    Raises ValueError for NaN, which is a bug in the caller rather than a limit.
    """
    if math.isnan(amps):
        raise ValueError("a current limit cannot be NaN")
    clamped = min(max(amps, 0.0), max_current)
    # repr() gives the shortest decimal that round-trips, so 13.3 stays 13.3 instead of
    # becoming 13.299999... and losing a step to binary rounding.
    rounded = float(Decimal(repr(clamped)).quantize(Decimal("0.1"), rounding=ROUND_FLOOR))
    return rounded if rounded >= MIN_CURRENT else 0.0


def build_profile(
    purpose: ProfilePurpose,
    role: ProfileRole,
    connector_id: int,
    limit: float,
    number_phases: int,
    now: datetime,
    validity: float,
) -> LimitProfile:
    """The profile of one role and purpose; `now` is the wall clock (UTC)."""
    target = connector_id if purpose is ProfilePurpose.TX_DEFAULT else 0
    slot = 0x80 if purpose is ProfilePurpose.STATION_MAX else 0
    start = now - START_SCHEDULE_LEAD
    if role is ProfileRole.LIMIT:
        return LimitProfile(
            purpose, role, target, PROFILE_ID_BASE + slot + target, LIMIT_STACK_LEVEL,
            limit, number_phases, start, valid_to=now + timedelta(seconds=validity),
            duration=math.ceil(validity + START_SCHEDULE_LEAD.total_seconds()),
        )  # fmt: skip
    # The fail-safe and an unbounded limit share the low slot: one replaces the other.
    return LimitProfile(
        purpose, role, target, PROFILE_ID_BASE + slot + 0x40 + target, FAILSAFE_STACK_LEVEL,
        limit, number_phases, start,
    )  # fmt: skip


def iso(moment: datetime) -> str:
    """A UTC time as OCPP wants it, to the second, with `Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
