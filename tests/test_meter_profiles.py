"""Meter profiles as data (pure): the shipped files say what their documents say, and
a broken profile is refused with a message naming the file and key."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from gateway.adapters.modbus.decoding import DataType, WordOrder
from gateway.adapters.modbus.profile import ProfileError, load_profile
from gateway.meters.profile import (
    available_meter_profiles,
    load_meter_profile,
    load_meter_profile_file,
    meter_profile_names,
    meter_profiles_dir,
    parse_meter_profile,
)

MINIMAL: dict[str, Any] = {
    "name": "test-meter",
    "vendor": "Test",
    "model": "T3",
    "protocol": "modbus-tcp",
    "source": {"title": "Test manual"},
    "register_defaults": {"function_code": 4, "type": "float32"},
    "registers": {
        "current_l1": {"address": 6},
        "current_l2": {"address": 8},
        "current_l3": {"address": 10},
    },
}


def data(**changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(MINIMAL)
    result.update(changes)
    return result


def test_shipped_profiles_cite_their_documents() -> None:
    assert meter_profile_names() == ["abb-b23", "carlo-gavazzi-em24", "eastron-sdm630"]
    for profile in available_meter_profiles():
        assert profile.source.title and profile.source.version and profile.source.notes
        assert profile.has("power") and profile.has("voltage")
        text = (meter_profiles_dir() / f"{profile.name}.toml").read_text()
        assert text.startswith("# ") and "Source:" in text


def test_shipped_profiles_match_their_documents() -> None:
    sdm = load_meter_profile("eastron-sdm630")
    assert [sdm.registers[f"current_l{n}"].address for n in (1, 2, 3)] == [6, 8, 10]
    assert sdm.registers["power_l1"].address == 0x0C
    assert {(s.function_code, s.data_type, s.word_order) for s in sdm.registers.values()} == {
        (4, DataType.FLOAT32, WordOrder.BIG)
    }
    em24 = load_meter_profile("carlo-gavazzi-em24")
    current = em24.registers["current_l1"]
    assert (current.address, current.data_type, current.word_order, current.scale) == (
        0x0C,
        DataType.INT32,
        WordOrder.LITTLE,
        0.001,
    )
    assert em24.registers["power_l3"].address == 0x16 and em24.registers["power_l3"].scale == 0.1
    assert em24.read_max_count == 11
    assert all(p.block.count <= 11 for p in em24.read_plan)
    abb = load_meter_profile("abb-b23")
    assert abb.registers["current_l1"].address == 0x5B0C
    assert abb.registers["current_l1"].data_type is DataType.UINT32
    assert abb.registers["power_l1"].data_type is DataType.INT32
    assert {s.function_code for s in abb.registers.values()} == {3}
    assert len(abb.read_plan) == 1


def test_meter_ranges_allow_export_and_large_sites() -> None:
    current = load_meter_profile("eastron-sdm630").registers["current_l1"]
    assert (current.minimum, current.maximum) == (-10_000.0, 10_000.0)
    # the charger profiles keep their own ranges
    assert load_profile("alfen-eve").registers["current_l1"].minimum == -1.0


def test_minimal_profile_and_max_count() -> None:
    profile = parse_meter_profile(data())
    assert not profile.has("power") and not profile.has("voltage")
    assert [(p.block.address, p.block.count) for p in profile.read_plan] == [(6, 6)]
    split = parse_meter_profile(data(read={"max_count": 4}))
    assert [(p.block.address, p.block.count) for p in split.read_plan] == [(6, 4), (10, 2)]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"registers": {"current_l1": {"address": 6}}}, r"registers.current_l2: Field required"),
        (
            {"registers": {**MINIMAL["registers"], "power_l1": {"address": 12}}},
            r"give power_l1, power_l2 and power_l3, or none",
        ),
        (
            {"registers": {**MINIMAL["registers"], "energy": {"address": 70}}},
            r"registers.energy: Extra inputs are not permitted",
        ),
        (
            {"registers": {**MINIMAL["registers"], "current_l3": {"address": 10, "scale": 0}}},
            r"registers.current_l3.scale",
        ),
        ({"read": {"max_count": 1}}, r"read.max_count"),
        ({"protocol": "sunspec"}, r"protocol"),
        ({"name": "bad name"}, r"name"),
        (
            {
                "registers": {
                    **MINIMAL["registers"],
                    "current_l1": {"address": 6, "type": "ascii", "length": 2},
                }
            },
            r"registers.current_l1: only the state may be ascii",
        ),
        ({"source": {}}, r"source.title"),
    ],
)
def test_broken_profiles_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ProfileError, match=r"meter profile <test>: .*" + message):
        parse_meter_profile(data(**changes), "<test>")


def test_profile_files_and_names(tmp_path: Path) -> None:
    with pytest.raises(
        ProfileError,
        match=r"unknown meter profile 'nope'; known meter profiles: "
        r"abb-b23, carlo-gavazzi-em24, eastron-sdm630",
    ):
        load_meter_profile("nope")
    with pytest.raises(ProfileError, match="invalid meter profile name"):
        load_meter_profile("../etc/passwd")
    path = tmp_path / "other-name.toml"
    source = (meter_profiles_dir() / "abb-b23.toml").read_text()
    path.write_text(source)
    with pytest.raises(ProfileError, match=r"name 'abb-b23' must match the file name"):
        load_meter_profile_file(path)
    path.write_text("name = ")
    with pytest.raises(ProfileError, match=r"meter profile .*other-name.toml: "):
        load_meter_profile_file(path)
    good = tmp_path / "abb-b23.toml"
    good.write_text(source)
    assert load_meter_profile_file(good) == load_meter_profile("abb-b23")
    assert tomllib.loads(source)["name"] == "abb-b23"
