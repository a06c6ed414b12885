"""`ev-gateway profiles` and the README's charger table come from one catalog, derived
from the profile files and the non-Modbus adapters."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gateway.adapters.catalog import catalog, markdown_table, profile_entry, text_listing
from gateway.adapters.modbus.profile import available_profiles, load_profile
from gateway.cli import main

README = Path(__file__).parents[1] / "README.md"


def test_every_profile_and_adapter_is_listed_and_at_least_twelve_models() -> None:
    entries = catalog()
    names = [e.name for e in entries]
    assert set(names) >= {p.name for p in available_profiles()} | {"go-e", "ocpp"}
    models = [n for n in names if n not in ("generic", "ocpp")]
    assert len(models) >= 12
    assert names[-3:] == ["generic", "go-e", "ocpp"]
    for entry in entries:
        assert entry.reads[0] == "power" and entry.document and entry.watchdog


def test_entries_follow_what_the_profile_says() -> None:
    webasto = profile_entry(load_profile("webasto-next"))
    assert webasto.reads == ("power", "current L1-L3", "energy", "plug state")
    assert "writes 1 to 6000 every 5 s" in webasto.watchdog
    assert "every quarter of the timeout in 2002" in webasto.watchdog
    keba = profile_entry(load_profile("keba-p40"))
    assert keba.reads[-1] == "charging state"
    assert keba.phase_switching.startswith("register 5052 (1p = 0, 3p = 1)")
    compact = profile_entry(load_profile("mennekes-amtron-compact"))
    assert "Modbus RTU, unit 50" in compact.adapter
    assert compact.watchdog == "writes 0x55AA to 3328 every 5 s"
    assert "Kostal ENECTOR AC 3.7 / 11" in compact.covers
    bender = profile_entry(load_profile("bender-cc"))
    assert "SMA EV Charger Business" in bender.covers and bender.phase_switching == "no"
    charx = profile_entry(load_profile("phoenix-contact-charx"))
    assert charx.watchdog == "none documented"
    abb = load_profile("abb-terra-ac")
    partial = dict(abb.registers)
    del partial["voltage_l3"]
    assert "voltage L1, L2" in profile_entry(dataclasses.replace(abb, registers=partial)).reads


def test_cli_prints_one_block_per_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles"]) == 0
    out = capsys.readouterr().out
    assert out == text_listing(catalog())
    assert out.count("\n  watchdog  ") == len(catalog())
    assert "keba-p40: KEBA KeContact P40" in out and "go-e: go-e Charger" in out


def test_readme_table_is_the_catalog() -> None:
    text = README.read_text(encoding="utf-8")
    table = markdown_table(catalog())
    header = table.splitlines()[0]
    assert header in text, "README: the Supported chargers table is missing"
    start = text.index(header)
    end = text.index("\n\n", start)
    assert text[start : end + 1] == table, "README table differs: paste markdown_table(catalog())"
