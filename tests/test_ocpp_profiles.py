"""Pure parts of OCPP limits: rounding and the shape of the gateway's profiles."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.adapters.ocpp.profiles import (
    ProfilePurpose,
    ProfileRole,
    build_profile,
    round_limit,
)


@pytest.mark.parametrize(
    ("amps", "expected"),
    [
        (13.37, 13.3),
        (13.3, 13.3),
        (12.3, 12.3),
        (6.0, 6.0),
        (6.09, 6.0),
        (5.99, 0.0),
        (4.0, 0.0),
        (0.0, 0.0),
        (-3.0, 0.0),
        (40.0, 16.0),
        (16.05, 16.0),
    ],
)
def test_round_limit(amps: float, expected: float) -> None:
    assert round_limit(amps, max_current=16.0) == expected


def test_round_limit_refuses_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        round_limit(float("nan"), 16.0)


@given(st.floats(min_value=6.0, max_value=32.0))
def test_round_limit_is_a_tenth_at_most_below(amps: float) -> None:
    limit = round_limit(amps, max_current=32.0)
    assert limit <= amps
    assert amps - limit < 0.1 + 1e-9
    assert abs(limit * 10 - round(limit * 10)) < 1e-9


def test_profile_shape() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    limit = build_profile(ProfilePurpose.TX_DEFAULT, ProfileRole.LIMIT, 2, 13.3, 1, now, 180)
    assert (limit.connector_id, limit.stack_level, limit.limit, limit.number_phases) == (
        2, 1, 13.3, 1,
    )  # fmt: skip
    assert limit.start == datetime(2026, 1, 1, 11, 59, 0, tzinfo=UTC)
    assert limit.valid_to == datetime(2026, 1, 1, 12, 3, 0, tzinfo=UTC)
    assert limit.duration == 240
    failsafe = build_profile(ProfilePurpose.TX_DEFAULT, ProfileRole.FAILSAFE, 2, 0.0, 1, now, 180)
    assert (failsafe.stack_level, failsafe.valid_to, failsafe.duration) == (0, None, None)
    unbounded = build_profile(
        ProfilePurpose.TX_DEFAULT, ProfileRole.UNBOUNDED_LIMIT, 2, 10.0, 1, now, 180
    )
    assert unbounded.profile_id == failsafe.profile_id  # it takes the fail-safe's slot
    cp_max = build_profile(ProfilePurpose.STATION_MAX, ProfileRole.LIMIT, 2, 10.0, 3, now, 180)
    assert cp_max.connector_id == 0
    ids = {limit.profile_id, failsafe.profile_id, cp_max.profile_id}
    assert len(ids) == 3
