"""Profiles as data: the shipped files, validation errors, and read planning."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.adapters.modbus.decoding import DataType, WordOrder
from gateway.adapters.modbus.plan import MAX_READ_COUNT, ReadBlock, RegisterRange, plan_reads
from gateway.adapters.modbus.profile import (
    ProfileError,
    WatchdogSpec,
    available_profiles,
    load_profile,
    load_profile_file,
    parse_profile,
)
from gateway.core.model import CableState, ComponentState

PROFILES_DIR = Path(__file__).parents[1] / "gateway" / "profiles"


def generic_data() -> dict[str, Any]:
    return tomllib.loads((PROFILES_DIR / "generic.toml").read_text())


# -- shipped profiles ---------------------------------------------------------------


def test_available_profiles_are_the_shipped_files() -> None:
    names = [p.name for p in available_profiles()]
    assert names == sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))
    assert {"generic", "alfen-eve"} <= set(names)
    for profile in available_profiles():
        assert profile.protocol in ("modbus-tcp", "modbus-rtu")
        assert profile.vendor and profile.model and profile.source.title
        assert profile.min_current == 6.0


def test_alfen_profile_matches_the_vendor_document() -> None:
    alfen = load_profile("alfen-eve")
    regs = alfen.registers
    expected = {
        "voltage_l1": 306, "voltage_l2": 308, "voltage_l3": 310,
        "current_l1": 320, "current_l2": 322, "current_l3": 324,
        "active_power": 344, "current_limit": 1206,
    }  # fmt: skip
    for name, address in expected.items():
        assert (regs[name].address, regs[name].data_type) == (address, DataType.FLOAT32), name
        assert regs[name].word_order is WordOrder.BIG and regs[name].function_code == 3
    assert (regs["energy"].address, regs["energy"].data_type) == (374, DataType.FLOAT64)
    assert (alfen.state.address, alfen.state.data_type, alfen.state.count) == (
        1201, DataType.ASCII, 5,
    )  # fmt: skip
    assert alfen.state_codes["C2"] == (CableState.EV_PLUGGED, ComponentState.CHARGING)
    assert alfen.state_codes["B1"] == (CableState.EV_PLUGGED, ComponentState.READY)
    assert alfen.state_codes["A"][0] is CableState.UNPLUGGED
    sp = alfen.setpoint
    assert (sp.address, sp.data_type, sp.write_function_code) == (1210, DataType.FLOAT32, 16)
    assert alfen.safe_current is not None and alfen.safe_current.address == 1212
    assert alfen.watchdog == WatchdogSpec(25.0, 60.0, 1208, None)
    assert alfen.unit_id == 1
    assert "Alfen NG9xx" in alfen.source.title


def test_read_plans_use_few_requests() -> None:
    generic = load_profile("generic").read_plan
    assert [p.block for p in generic] == [
        ReadBlock(3, 0, 21, ("voltage_l1", "voltage_l2", "voltage_l3", "current_l1",
                             "current_l2", "current_l3", "active_power", "energy",
                             "current_limit", "state")),
    ]  # fmt: skip
    alfen = [(p.block.address, p.block.count) for p in load_profile("alfen-eve").read_plan]
    assert alfen == [(306, 72), (1201, 7)]  # 306-377 and 1201-1207


def test_replacing_a_profile_field_recompiles_the_plan() -> None:
    alfen = load_profile("alfen-eve")
    tight = dataclasses.replace(alfen, read_max_gap=16)
    assert [p.block.address for p in tight.read_plan] == [306, 344, 374, 1201]


def test_unknown_and_invalid_names() -> None:
    with pytest.raises(ProfileError, match=r"unknown charger profile 'nope'.*alfen-eve, .*generic"):
        load_profile("nope")
    with pytest.raises(ProfileError, match="invalid charger profile name"):
        load_profile("../etc/passwd")


# -- validation errors name the key -------------------------------------------------


def _broken(**changes: Any) -> dict[str, Any]:
    data = generic_data()
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = data
        for part in parents:
            node = node[part]
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return data


_DELETE = object()

INVALID = [
    ({"colour": "red"}, r"colour: Extra inputs are not permitted"),
    ({"registers__voltage_l1": {"address": 0, "typ": "float32"}}, r"registers.voltage_l1.typ"),
    ({"registers__energy": {"address": 14, "type": "float128"}}, r"registers.energy.type"),
    ({"registers__active_power": _DELETE}, r"registers.active_power: Field required"),
    ({"registers__state": {"address": 20, "type": "ascii"}}, r"ascii register needs length"),
    ({"registers__energy": {"address": 14, "length": 4}}, r"length is only for ascii"),
    ({"registers__voltage_l1": {"address": 70000}}, r"registers.voltage_l1.address"),
    ({"registers__voltage_l1": {"address": 0, "function_code": 5}}, r"function_code"),
    ({"registers__voltage_l1": {"address": 0, "range": [5, 1]}}, r"min < max"),
    ({"registers__active_power": {"address": 12, "scale": 0}}, r"scale.*other than 0"),
    ({"states__A": ["ev_plugged", "ready"]}, r"states.A: .*integer"),
    ({"states__1": ["plugged", "ready"]}, r"states.1.0: Input should be"),
    ({"setpoint__write_function_code": 6}, r"function code 6 writes one register"),
    ({"setpoint__type": "ascii"}, r"setpoint.type: .*not ascii"),
    ({"watchdog__keepalive_interval": 60.0}, r"must be shorter than validity_time"),
    ({"current_step": 0}, r"current_step: Input should be greater than 0"),
    ({"protocol": "ocpp"}, r"protocol: Input should be 'modbus-tcp' or 'modbus-rtu'"),
    ({"registers__voltage_l1": {"address": 65535}}, r"registers.voltage_l1: address 65535"),
    ({"read__max_gap": -1}, r"read.max_gap"),
]


@pytest.mark.parametrize(("changes", "message"), INVALID)
def test_invalid_profiles_are_refused_with_the_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ProfileError, match=rf"profile <test>: .*{message}"):
        parse_profile(_broken(**changes), "<test>")


def test_profile_file_name_must_match_and_toml_must_parse(tmp_path: Path) -> None:
    text = (PROFILES_DIR / "generic.toml").read_text()
    (tmp_path / "other.toml").write_text(text)
    with pytest.raises(ProfileError, match="name 'generic' must match the file name"):
        load_profile_file(tmp_path / "other.toml")
    (tmp_path / "generic.toml").write_text(text + "\n[[[\n")
    with pytest.raises(ProfileError, match=r"generic.toml: "):
        load_profile_file(tmp_path / "generic.toml")
    (tmp_path / "generic.toml").write_text(text)
    assert load_profile_file(tmp_path / "generic.toml") == load_profile("generic")


def test_defaults_and_overrides() -> None:
    data = _broken(registers__current_l1={"address": 6, "type": "uint16", "scale": 0.1})
    profile = parse_profile(data)
    current = profile.registers["current_l1"]
    assert (current.data_type, current.scale, current.count) == (DataType.UINT16, 0.1, 1)
    assert (current.minimum, current.maximum) == (-1.0, 1000.0)  # default plausible range
    assert profile.registers["voltage_l1"].data_type is DataType.FLOAT32  # register_defaults


# -- read planning ------------------------------------------------------------------


def R(address: int, count: int = 2, fc: int = 3) -> RegisterRange:
    return RegisterRange(fc, address, count, f"r{address}")


def spans(blocks: list[ReadBlock]) -> list[tuple[int, int, int]]:
    return [(b.function_code, b.address, b.count) for b in blocks]


def test_plan_merges_small_gaps_and_splits_large_ones() -> None:
    assert spans(plan_reads([R(0), R(2), R(10)], max_gap=16)) == [(3, 0, 12)]
    assert spans(plan_reads([R(0), R(19)], max_gap=16)) == [(3, 0, 2), (3, 19, 2)]
    assert spans(plan_reads([R(0), R(18)], max_gap=16)) == [(3, 0, 20)]  # gap exactly 16


def test_plan_keeps_function_codes_apart_and_sorts() -> None:
    blocks = plan_reads([R(10, fc=4), R(0, fc=3), R(0, fc=4), R(4, fc=3)])
    assert spans(blocks) == [(3, 0, 6), (4, 0, 12)]
    assert blocks[0].names == ("r0", "r4")


def test_plan_never_exceeds_125_registers() -> None:
    ranges = [R(address) for address in range(0, 300, 2)]
    blocks = plan_reads(ranges)
    assert all(b.count <= MAX_READ_COUNT for b in blocks)
    assert spans(blocks) == [(3, 0, 124), (3, 124, 124), (3, 248, 52)]


def test_plan_overlaps_duplicates_and_zero_gap() -> None:
    assert spans(plan_reads([R(0, 4), R(2, 4), R(2, 4)])) == [(3, 0, 6)]
    assert spans(plan_reads([R(0), R(2), R(5)], max_gap=0)) == [(3, 0, 4), (3, 5, 2)]
    with pytest.raises(ValueError, match="126 registers"):
        plan_reads([R(0, 126)])
    assert plan_reads([]) == []


def _minimum_blocks(ranges: list[RegisterRange], max_gap: int, max_count: int) -> int:
    """Brute force (dynamic programming over sorted runs), to check the greedy plan."""
    total = 0
    for fc in {r.function_code for r in ranges}:
        rs = sorted(
            (r for r in ranges if r.function_code == fc), key=lambda r: (r.address, r.count)
        )
        best = [0] + [len(rs) + 1] * len(rs)
        for j in range(1, len(rs) + 1):
            for i in range(j):  # rs[i:j] as one request?
                group = rs[i:j]
                start, end, ok = group[0].address, group[0].end, True
                for r in group[1:]:
                    ok &= r.address - end <= max_gap
                    end = max(end, r.end)
                ok &= end - start <= max_count
                if ok:
                    best[j] = min(best[j], best[i] + 1)
        total += best[-1]
    return total


ranges_strategy = st.lists(
    st.builds(R, st.integers(0, 400), st.integers(1, 6), st.sampled_from([3, 4])), max_size=25
)


@given(ranges_strategy, st.integers(0, 40), st.integers(8, MAX_READ_COUNT))
def test_plan_properties(ranges: list[RegisterRange], max_gap: int, max_count: int) -> None:
    blocks = plan_reads(ranges, max_gap=max_gap, max_count=max_count)
    for r in ranges:  # every register is read, by a request of its function code
        assert any(
            b.function_code == r.function_code and b.address <= r.address and r.end <= b.end
            for b in blocks
        )
    assert all(1 <= b.count <= max_count for b in blocks)
    for b in blocks:  # a request only reaches registers some range asked for, or small gaps
        inside = [
            r for r in ranges
            if r.function_code == b.function_code and b.address <= r.address and r.end <= b.end
        ]  # fmt: skip
        assert min(r.address for r in inside) == b.address
        assert max(r.end for r in inside) == b.end
    assert len(blocks) == _minimum_blocks(ranges, max_gap, max_count)
