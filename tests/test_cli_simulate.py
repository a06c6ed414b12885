"""`ev-gateway simulate --config` serves what the example config describes, and the
example, the simulator and the demo agree: the pool's power is the sum of its
chargers' and stays at the 11 kW the example asks for. Published numbers are rounded."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from gateway.config import config_from_dict, load_config
from gateway.demo import DEMO_SITE
from gateway.simulator.serve import specs_for_config
from tests.conftest import Mosquitto, MqttProbe, free_port

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "example.toml"
BASE = "ev-gateway"
CHARGERS = ("bay-1", "bay-2", "bay-3")


def test_simulate_config_gives_each_charger_an_ev_matching_its_wiring() -> None:
    specs = {s.label: s for s in specs_for_config(load_config(EXAMPLE))}
    assert set(specs) == set(CHARGERS)
    assert [specs[c].port for c in CHARGERS] == [5020, 5021, 5030]
    assert [specs[c].profile for c in CHARGERS] == ["alfen-eve", "alfen-eve", "generic"]
    assert [specs[c].ev.phases for c in CHARGERS if specs[c].ev] == [3, 3, 1]
    assert [specs[c].ev.max_current for c in CHARGERS if specs[c].ev] == [16.0, 32.0, 16.0]


def test_the_demo_site_is_wired_like_the_example() -> None:
    example = load_config(EXAMPLE)
    demo = config_from_dict(DEMO_SITE)
    assert [(c.id, c.phases, c.max_current) for c in demo.chargers] == [
        (c.id, c.phases, c.max_current) for c in example.chargers
    ]
    for charger in demo.chargers:
        assert charger.simulated_ev.phases == len(charger.phases)
        assert charger.simulated_ev.plugged
    assert [p.model_dump() for p in demo.pools] == [p.model_dump() for p in example.pools]


def _numbers(payload: Any, key: str = "") -> list[tuple[str, float]]:
    if isinstance(payload, dict):
        return [n for k, v in payload.items() for n in _numbers(v, k)]
    if isinstance(payload, float | int) and not isinstance(payload, bool):
        return [(key, float(payload))]
    return []


def _assert_rounded(payload: Any) -> None:
    for key, value in _numbers(payload):
        digits = 1 if key in ("value", "active_power", "energy", "lower", "upper") else 2
        assert round(value, digits) == value, (key, value)


async def test_example_pool_power_is_the_sum_of_its_chargers(
    mosquitto: Mosquitto, probe: MqttProbe, tmp_path: Path
) -> None:
    ports = {5020: free_port(), 5021: free_port(), 5030: free_port()}
    text = EXAMPLE.read_text().replace("port = 1883", f"port = {mosquitto.port}")
    for old, new in ports.items():
        text = text.replace(f"port = {old}\n", f"port = {new}\n")
    config = tmp_path / "gateway.toml"
    config.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVGW_")}
    simulate = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "simulate", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=(tmp_path / "simulate.log").open("wb"), env=env,
    )  # fmt: skip
    run = None
    try:
        assert simulate.stdout is not None
        served = [simulate.stdout.readline().decode() for _ in CHARGERS]
        assert "bay-3: generic" in served[2] and "1-phase EV" in served[2], served
        run = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "run.log").open("wb"),
            env={**env, "EVGW_POWER__RESAMPLING_PERIOD": "0.5"},
        )  # fmt: skip
        settled = await probe.wait_for(
            f"{BASE}/pools/garage/power",
            lambda m: not m.json()["missing"] and 10_000 <= m.json()["value"] <= 11_050,
            timeout=60,
        )
        start = probe.messages.index(settled)
        # three more complete ticks after the settled one
        ticks = await _ticks(probe, start, 3)
    finally:
        for process in (run, simulate):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(15)
    for power, current, chargers in ticks:
        states = [chargers[c] for c in CHARGERS]
        assert abs(power["value"] - sum(s["active_power"] for s in states)) <= 0.2
        assert power["value"] <= 11_050  # the example's default_power, not 14 kW
        for phase in ("value_p1", "value_p2", "value_p3"):
            summed = sum(s["current_per_phase"][phase] for s in states)
            assert abs(current[phase] - summed) <= 0.03, (phase, current, states)
        # bay-3 is wired to grid L3 alone: nothing on L1 or L2
        bay3 = chargers["bay-3"]["current_per_phase"]
        assert bay3["value_p1"] == bay3["value_p2"] == 0.0 < bay3["value_p3"]
        for payload in (power, current, *states):
            _assert_rounded(payload)


async def _ticks(
    probe: MqttProbe, start: int, count: int
) -> list[tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]]:
    """(power, current, {charger: state}) of `count` ticks after message `start`.

    A tick's pool figures and charger states are published together; a tick is taken
    once the next tick's power arrives, so all of its messages are in.
    """
    powers = []
    after = start + 1
    for _ in range(count + 1):
        message = await probe.wait_for(f"{BASE}/pools/garage/power", after=after, timeout=30)
        after = probe.messages.index(message) + 1
        powers.append(after - 1)
    ticks = []
    for begin, end in itertools.pairwise(powers):
        window = probe.messages[begin:end]
        by_topic = {m.topic: json.loads(m.payload) for m in window}
        chargers = {c: by_topic[f"{BASE}/chargers/{c}/state"] for c in CHARGERS}
        ticks.append((by_topic[f"{BASE}/pools/garage/power"],
                      by_topic[f"{BASE}/pools/garage/current_per_phase"], chargers))  # fmt: skip
    return ticks
