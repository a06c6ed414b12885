"""Pure parts of the OCPP adapter: meter values, status table, reported state."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.adapters.ocpp.meter_values import MeterReading, parse_meter_values
from gateway.adapters.ocpp.state import ReportedState
from gateway.adapters.ocpp.status_map import (
    STATUS_TABLE,
    connector_state,
    main_controller_override,
)
from gateway.adapters.ocpp.transactions import TransactionRegistry
from gateway.core.model import CableState, ComponentState, Phases


def sv(
    value: Any, measurand: str | None = None, unit: str | None = None, **extra: Any
) -> dict[str, Any]:
    item: dict[str, Any] = {"value": value, **extra}
    if measurand is not None:
        item["measurand"] = measurand
    if unit is not None:
        item["unit"] = unit
    return item


def entry(*sampled: Any, timestamp: str = "2026-01-01T12:00:00Z") -> dict[str, Any]:
    return {"timestamp": timestamp, "sampled_value": list(sampled)}


# -- meter values -----------------------------------------------------------------------


def test_full_reading_in_base_units() -> None:
    result = parse_meter_values(
        [
            entry(
                sv("11000", "Power.Active.Import", "W"),
                sv("16.0", "Current.Import", "A", phase="L1"),
                sv("15.5", "Current.Import", "A", phase="L2"),
                sv("16.5", "Current.Import", "A", phase="L3"),
                sv("230.1", "Voltage", "V", phase="L1-N"),
                sv("229.9", "Voltage", "V", phase="L2-N"),
                sv("231", "Voltage", "V", phase="L3-N"),
                sv("12345", "Energy.Active.Import.Register", "Wh"),
            )
        ]
    )
    assert result.problems == []
    assert result.reading == MeterReading(
        power=11000.0,
        current=(16.0, 15.5, 16.5),
        voltage=(230.1, 229.9, 231.0),
        energy=12345.0,
    )


def test_kilo_units_are_converted() -> None:
    reading = parse_meter_values(
        [
            entry(
                sv("7.4", "Power.Active.Import", "kW"),
                sv("12.5", "Energy.Active.Import.Register", "kWh"),
            )
        ]
    ).reading
    assert reading.power == pytest.approx(7400.0)
    assert reading.energy == pytest.approx(12500.0)


def test_defaults_measurand_energy_and_base_units() -> None:
    reading = parse_meter_values(
        [entry(sv("500"), sv("3000", "Power.Active.Import"), sv("8", "Current.Import", phase="L2"))]
    ).reading
    assert reading.energy == 500.0
    assert reading.power == 3000.0
    assert reading.current == (None, 8.0, None)


def test_sloppy_but_understandable_input() -> None:
    reading = parse_meter_values(
        [
            entry(
                sv(7.4, "power.active.import", "KW"),  # a number, odd case
                sv(" 230 ", "Voltage", "V", phase="L1"),  # L1 instead of L1-N
                sv("400", "Voltage", "V", phase="L1-L2"),  # line-to-line: ignored
                sv("0.3", "Current.Import", "A", phase="N"),  # neutral: ignored
                sv("55", "SoC", "Percent"),  # not used by the gateway
            )
        ]
    ).reading
    assert reading.power == pytest.approx(7400.0)
    assert reading.voltage == (230.0, None, None)
    assert reading.current == (None, None, None)


def test_per_phase_power_sums_to_the_total() -> None:
    reading = parse_meter_values(
        [
            entry(
                sv("1000", "Power.Active.Import", "W", phase="L1"),
                sv("2000", "Power.Active.Import", "W", phase="L2-N"),
            )
        ]
    ).reading
    assert reading.power == 3000.0


def test_unphased_current_is_kept_apart() -> None:
    reading = parse_meter_values([entry(sv("10", "Current.Import", "A"))]).reading
    assert reading.current == (None, None, None)
    assert reading.current_unphased == 10.0


def test_garbage_is_reported_and_skipped() -> None:
    result = parse_meter_values(
        [
            entry(
                sv("abc", "Power.Active.Import", "W"),
                sv("NaN", "Current.Import", "A", phase="L1"),
                sv("5", "Current.Import", "furlong", phase="L2"),
                sv("5", "Current.Import", "A", phase="L9"),
                "not an object",
                sv("230", "Voltage", "V", phase="L3"),
            ),
            "not an entry",
            {"timestamp": "x", "sampled_value": "nope"},
        ]
    )
    assert result.reading == MeterReading(voltage=(None, None, 230.0))
    assert len(result.problems) == 7


def test_signed_data_is_skipped_silently() -> None:
    result = parse_meter_values(
        [entry(sv("AbC==", "Power.Active.Import", "W", format="SignedData"))]
    )
    assert result.reading.empty
    assert result.problems == []


def test_batch_applies_oldest_first() -> None:
    newer = entry(sv("2000", "Power.Active.Import"), timestamp="2026-01-01T12:00:10Z")
    older = entry(
        sv("1000", "Power.Active.Import"),
        sv("99", "Energy.Active.Import.Register"),
        timestamp="2026-01-01T12:00:00+00:00",
    )
    reading = parse_meter_values([newer, older]).reading
    assert reading.power == 2000.0
    assert reading.energy == 99.0


def test_not_a_list() -> None:
    result = parse_meter_values({"value": "1"})
    assert result.reading.empty
    assert result.problems


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_parsing_never_raises(value: Any) -> None:
    result = parse_meter_values(value)
    for number in (result.reading.power, result.reading.energy, *result.reading.current):
        assert number is None or math.isfinite(number)


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "value": st.text(max_size=6) | st.integers() | st.floats(),
                "measurand": st.sampled_from(
                    ["Power.Active.Import", "Current.Import", "Voltage", "x"]
                ),
                "unit": st.sampled_from(["W", "kW", "A", "V", "Wh", "kWh", "?"]),
                "phase": st.sampled_from(["L1", "L2", "L3", "L1-N", "N", "L1-L2", "bad"]),
            }
        ),
        max_size=8,
    )
)
def test_parsing_sampled_values_never_raises(sampled: list[dict[str, Any]]) -> None:
    parse_meter_values([entry(*sampled)])


# -- status table -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cable", "component"),
    [
        ("Available", CableState.UNPLUGGED, ComponentState.READY),
        ("Preparing", CableState.EV_PLUGGED, ComponentState.READY),
        ("Charging", CableState.EV_LOCKED, ComponentState.CHARGING),
        ("SuspendedEV", CableState.EV_LOCKED, ComponentState.READY),
        ("SuspendedEVSE", CableState.EV_LOCKED, ComponentState.READY),
        ("Finishing", CableState.EV_PLUGGED, ComponentState.NOT_READY),
        ("Faulted", CableState.UNSPECIFIED, ComponentState.ERROR),
        ("Unavailable", CableState.UNSPECIFIED, ComponentState.NOT_READY),
        ("Reserved", CableState.UNPLUGGED, ComponentState.READY),
    ],
)
def test_status_table(status: str, cable: CableState, component: ComponentState) -> None:
    state = connector_state(status)
    assert state is not None
    assert (state.cable, state.component) == (cable, component)
    assert connector_state(status.upper()) == state


def test_every_ocpp_status_is_mapped() -> None:
    from ocpp.v16.enums import ChargePointStatus

    assert set(STATUS_TABLE) == {s.value for s in ChargePointStatus}
    assert connector_state("Bogus") is None
    assert connector_state(3) is None


def test_main_controller_override() -> None:
    assert main_controller_override("Faulted") is ComponentState.ERROR
    assert main_controller_override("Unavailable") is ComponentState.NOT_READY
    assert main_controller_override("Available") is None
    assert main_controller_override("Finishing") is None


def test_two_point_zero_meter_values_use_unit_of_measure() -> None:
    result = parse_meter_values(
        [
            entry(
                {"value": 7.4, "measurand": "Power.Active.Import",
                 "unit_of_measure": {"unit": "W", "multiplier": 3}},
                {"value": 16, "measurand": "Current.Import", "phase": "L1"},
                {"value": 12.5, "measurand": "Energy.Active.Import.Register",
                 "unit_of_measure": {"unit": "kWh"}},
                {"value": 16, "measurand": "Current.Offered", "phase": "L1"},
                {"value": 15, "measurand": "Current.Offered", "phase": "L2"},
                {"value": 1, "measurand": "Power.Active.Import",
                 "unit_of_measure": {"unit": "W", "multiplier": "x"}},
            )
        ]
    )  # fmt: skip
    reading = result.reading
    assert reading.power == pytest.approx(7400.0)
    assert reading.current == (16.0, None, None)
    assert reading.energy == pytest.approx(12500.0)
    assert reading.current_offered == 16.0
    assert len(result.problems) == 1 and "not supported" in result.problems[0]


# -- reported state ---------------------------------------------------------------------


def reading(**kwargs: Any) -> MeterReading:
    return MeterReading(**kwargs)


def test_state_ignores_other_connectors_and_honours_connector_zero() -> None:
    state = ReportedState(connector_id=1, wired_phases=3)
    state.frame_received(100.0)
    state.status_received(2, "Faulted")
    assert state.status is None
    state.status_received(1, "Charging")
    state.status_received(0, "Faulted")
    sample = state.sample(16.0, 230.0, None)
    assert sample.component_state is ComponentState.ERROR
    state.status_received(0, "Available")
    assert state.sample(16.0, 230.0, None).component_state is ComponentState.CHARGING


def test_state_uses_connector_zero_meter_until_the_connector_reports() -> None:
    state = ReportedState(connector_id=1, wired_phases=3)
    state.frame_received(100.0)
    state.meter_values_received(0, reading(power=1000.0))
    assert state.meter.power == 1000.0
    state.meter_values_received(1, reading(power=2000.0))
    state.meter_values_received(0, reading(power=3000.0))
    state.meter_values_received(2, reading(power=4000.0))
    assert state.meter.power == 2000.0


def test_state_missing_phases_carry_nothing_and_unphased_current_on_one_phase() -> None:
    three = ReportedState(connector_id=1, wired_phases=3)
    three.meter_values_received(1, reading(current=(10.0, 10.0, 10.0)))
    three.meter_values_received(1, reading(current=(12.0, None, None)))
    assert three.meter.current == (12.0, 0.0, 0.0)
    three.meter_values_received(1, reading(current_unphased=7.0))
    assert three.meter.current == (12.0, 0.0, 0.0)
    one = ReportedState(connector_id=1, wired_phases=1)
    one.meter_values_received(1, reading(current_unphased=7.0))
    assert one.meter.current == (7.0, None, None)


def test_state_energy_never_goes_backwards_and_idle_means_zero() -> None:
    state = ReportedState(connector_id=1, wired_phases=3)
    state.frame_received(100.0)
    state.transaction_started(1, 5000.0)
    state.meter_values_received(
        1, reading(power=11000.0, current=(16.0, 16.0, 16.0), energy=6000.0)
    )
    state.transaction_started(1, 4000.0)  # a late, queued message
    assert state.meter.energy == 6000.0
    state.transaction_stopped(1, 7000.0)
    sample = state.sample(16.0, 230.0, 16.0)
    assert (sample.active_power, sample.current, sample.energy) == (0.0, Phases(), 7000.0)
    state.meter_values_received(1, reading(power=11000.0, current=(16.0, 16.0, 16.0)))
    state.status_received(1, "Available")
    assert state.sample(16.0, 230.0, 16.0).active_power == 0.0


def test_state_sample_bounds_follow_phases_in_use() -> None:
    state = ReportedState(connector_id=1, wired_phases=3)
    state.frame_received(100.0)
    state.status_received(1, "Charging")
    state.meter_values_received(1, reading(current=(16.0, 0.0, 0.0), voltage=(240.0, 240.0, 240.0)))
    sample = state.sample(16.0, 230.0, 16.0)
    assert sample.timestamp == 100.0
    assert sample.inclusion_bounds.upper == pytest.approx(16.0 * 240.0)


def test_unknown_status_is_unknown_and_reported() -> None:
    state = ReportedState(connector_id=1, wired_phases=3)
    assert state.status_received(1, "Bogus") is False
    assert state.status is not None
    assert state.status.component is ComponentState.UNKNOWN


# -- transactions -----------------------------------------------------------------------


def test_transaction_ids_are_unique_and_map_to_connectors() -> None:
    registry = TransactionRegistry(first_id=TransactionRegistry.MAX_ID - 1)
    first = registry.start("CP-1", 1)
    second = registry.start("CP-2", 1)
    third = registry.start("CP-1", 2)
    assert len({first, second, third}) == 3
    assert third == 1  # wrapped, still positive int32
    assert registry.stop(second) == ("CP-2", 1)
    assert registry.stop(second) is None
    replaced = registry.start("CP-1", 1)  # a new one on the same connector forgets `first`
    assert registry.stop(first) is None
    assert registry.stop(replaced) == ("CP-1", 1)
