"""Pool formulas: sums, phase rotation, freshness and the missing list."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from gateway.core.formulas import PoolMember, pool_snapshot, to_grid_phases
from gateway.core.model import Phases
from tests.factories import sample

NOW = 1000.0


def test_power_is_the_sum_of_chargers_power() -> None:
    members = [PoolMember("a", (1, 2, 3)), PoolMember("b", (1, 2, 3)), PoolMember("c", (1,))]
    latest = {"a": sample(2.0), "b": sample(4.0), "c": sample(10.0)}
    snap = pool_snapshot(members, latest, NOW, 10.0)
    assert snap.power == 16.0
    assert snap.missing == ()


def test_single_phase_ev_on_rotated_charger_adds_to_grid_l2() -> None:
    members = [PoolMember("rot", (2, 3, 1))]
    latest = {"rot": sample(3680.0, current=(16.0, 0.0, 0.0))}
    snap = pool_snapshot(members, latest, NOW, 10.0)
    assert snap.current == Phases(0.0, 16.0, 0.0)


def test_rotation_of_a_three_phase_ev() -> None:
    assert to_grid_phases(Phases(1.0, 2.0, 3.0), (2, 3, 1)) == Phases(3.0, 1.0, 2.0)
    assert to_grid_phases(Phases(1.0, 2.0, 3.0), (3, 1, 2)) == Phases(2.0, 3.0, 1.0)
    assert to_grid_phases(Phases(5.0, 0.0, 0.0), (3,)) == Phases(0.0, 0.0, 5.0)


def test_stale_and_absent_chargers_count_as_zero_and_are_missing() -> None:
    members = [PoolMember(c, (1, 2, 3)) for c in ("fresh", "stale", "absent")]
    latest = {
        "fresh": sample(100.0, current=(1.0, 2.0, 3.0), timestamp=NOW - 1),
        "stale": sample(500.0, current=(5.0, 5.0, 5.0), timestamp=NOW - 10.5),
    }
    snap = pool_snapshot(members, latest, NOW, 10.0)
    assert snap.power == 100.0
    assert snap.current == Phases(1.0, 2.0, 3.0)
    assert snap.missing == ("stale", "absent")


def test_data_exactly_max_age_old_is_still_fresh() -> None:
    snap = pool_snapshot([PoolMember("a", (1,))], {"a": sample(7.0, timestamp=NOW - 10)}, NOW, 10)
    assert snap.power == 7.0


def test_nan_counts_as_zero() -> None:
    members = [PoolMember("a", (1, 2, 3)), PoolMember("b", (1, 2, 3))]
    latest = {"a": sample(math.nan, current=(math.nan, 1.0, 1.0)), "b": sample(5.0)}
    snap = pool_snapshot(members, latest, NOW, 10.0)
    assert snap.power == 5.0
    assert snap.current.p1 == 0.0


currents = st.floats(min_value=0, max_value=80, allow_nan=False)
wirings = st.permutations([1, 2, 3]).map(tuple) | st.sampled_from([(1,), (2,), (3,)])


@given(
    st.lists(
        st.tuples(st.floats(-1e5, 1e5), st.tuples(currents, currents, currents), wirings),
        max_size=12,
    )
)
def test_sums_are_preserved_by_rotation(chargers: list) -> None:  # type: ignore[type-arg]
    members = [PoolMember(f"c{i}", wiring) for i, (_, _, wiring) in enumerate(chargers)]
    latest = {
        f"c{i}": sample(power, current=current) for i, (power, current, _) in enumerate(chargers)
    }
    snap = pool_snapshot(members, latest, NOW, 10.0)
    assert math.isclose(snap.power, sum(p for p, _, _ in chargers), abs_tol=1e-6)
    wired_total = sum(sum(c[: len(w)]) for _, c, w in chargers)
    assert math.isclose(sum(snap.current), wired_total, abs_tol=1e-6)
    for grid_phase in (1, 2, 3):
        expected = sum(c[t] for _, c, w in chargers for t, g in enumerate(w) if g == grid_phase)
        assert math.isclose(snap.current.as_tuple()[grid_phase - 1], expected, abs_tol=1e-6)
