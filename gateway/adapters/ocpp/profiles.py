"""Current limits as OCPP 1.6 charging profiles (SetChargingProfile), pure code.

The gateway limits a charge point with one Absolute profile in amperes per phase:
`TxDefaultProfile` on the charger's connector first, `ChargePointMaxProfile` on
connector 0 as the fallback for firmwares that refuse the former. Why this shape
(see the OCPP research note, A.3):
- Amperes per phase with an explicit `numberPhases` are unambiguous for AC; a W
  limit depends on how the charge point assumes the EV's phase count.
- TxDefaultProfile also takes over a running transaction that has no TxProfile
  (errata E3.8), needs no transaction id, and survives transactions, so the limit is
  in force before the next EV plugs in.
- A fixed profile id per purpose and connector makes each write replace the previous
  profile instead of stacking new ones.
- `startSchedule` a minute in the past avoids a gap while the charge point swaps the
  old profile for the new one, even with a small clock skew.
- The schema allows one decimal (`multipleOf 0.1`); rounding *down* keeps the sum of
  limits under a fuse. The control pilot cannot signal less than 6 A (IEC 61851-1), so
  anything below that becomes 0 (pause).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

from ocpp.v16 import call
from ocpp.v16.datatypes import ChargingProfile, ChargingSchedule, ChargingSchedulePeriod
from ocpp.v16.enums import ChargingProfileKindType, ChargingRateUnitType

MIN_CURRENT = 6.0
"""The lowest current (A) the control pilot can signal; less than this means 0."""

START_SCHEDULE_LEAD = timedelta(minutes=1)
"""How far in the past `startSchedule` is set, so the new profile applies at once."""

PROFILE_ID_BASE = 0xEB00
"""Profile ids of the gateway: base + connector (TxDefault) or base + 0x80 (CPMax).

High enough not to collide with ids a backend or the charge point itself uses.
"""


class ProfilePurpose(StrEnum):
    """The two profile purposes the gateway writes, in the order it tries them."""

    TX_DEFAULT = "TxDefaultProfile"
    CHARGE_POINT_MAX = "ChargePointMaxProfile"


@dataclass(frozen=True, slots=True)
class ProfileTarget:
    """Where a profile of a purpose goes: the connector and the fixed profile id."""

    purpose: ProfilePurpose
    connector_id: int
    profile_id: int


def profile_target(purpose: ProfilePurpose, connector_id: int) -> ProfileTarget:
    """TxDefault goes on the charger's connector, CPMax on connector 0 (§3.13.2)."""
    if purpose is ProfilePurpose.TX_DEFAULT:
        return ProfileTarget(purpose, connector_id, PROFILE_ID_BASE + connector_id)
    return ProfileTarget(purpose, 0, PROFILE_ID_BASE + 0x80)


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


def set_charging_profile(
    target: ProfileTarget, limit: float, number_phases: int, now: datetime | None = None
) -> call.SetChargingProfile:
    """The SetChargingProfile request for one limit (A per phase), ready for `call()`."""
    start = (now or datetime.now(UTC)) - START_SCHEDULE_LEAD
    schedule = ChargingSchedule(
        charging_rate_unit=ChargingRateUnitType.amps,
        charging_schedule_period=[
            ChargingSchedulePeriod(start_period=0, limit=limit, number_phases=number_phases)
        ],
        start_schedule=start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    profile = ChargingProfile(
        charging_profile_id=target.profile_id,
        stack_level=0,
        charging_profile_purpose=target.purpose.value,
        charging_profile_kind=ChargingProfileKindType.absolute,
        charging_schedule=schedule,
    )
    return call.SetChargingProfile(connector_id=target.connector_id, cs_charging_profiles=profile)
