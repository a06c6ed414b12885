"""Restarts remember: the state file, and a gateway killed and started again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path

import pytest

from gateway.config import config_from_dict
from gateway.daemon import Gateway
from gateway.state_file import GatewayState, PoolState, SavedProposal, StateFile
from tests.conftest import Mosquitto, MqttProbe
from tests.harness import modbus_charger, simulators, site_config
from tests.test_e2e_control import wait_until

BASE = "ev-gateway"


def sample_state() -> GatewayState:
    proposals = [
        SavedProposal("hems", 10, 9000.0, 0.0, 22000.0, 1_800_000_000.0),
        SavedProposal("homeassistant", 5, 4000.0, None, None, None),
    ]
    return GatewayState({"default": PoolState(proposals, {"bay-1": 8.0})})


def test_state_round_trips_and_is_written_atomically(tmp_path: Path) -> None:
    store = StateFile(tmp_path, BASE)
    assert store.save(sample_state())
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary left
    loaded = StateFile(tmp_path, BASE).load()
    assert loaded.pools["default"].proposals == sample_state().pools["default"].proposals
    assert loaded.pools["default"].limits == {"bay-1": 8.0}


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '{"format": "something-else"}',
        '{"format": "ev-gateway-state", "version": 99, "base_topic": "ev-gateway", "pools": {}}',
        '{"format": "ev-gateway-state", "version": 1, "base_topic": "other", "pools": {}}',
        '{"format": "ev-gateway-state", "version": 1, "base_topic": "ev-gateway",'
        ' "pools": {"default": {"proposals": [{"source": 1}]}}}',
        "[" * 100_000,
    ],
)
def test_a_bad_state_file_is_set_aside_with_one_warning(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "state.json").write_text(content)
    caplog.set_level(logging.WARNING)
    state = StateFile(tmp_path, BASE).load()
    assert state.pools == {}
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "set aside" in caplog.records[0].getMessage()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 1 and names[0].startswith("state.json.bad-")


def saved_with(directory: Path, text: str) -> bool:
    path = directory / "state.json"
    return path.exists() and text in path.read_text()


@contextlib.asynccontextmanager
async def started(config: dict[str, object]):  # type: ignore[no-untyped-def]
    gateway = Gateway(config_from_dict(config, "<test>"))
    task = asyncio.create_task(gateway.run())
    await asyncio.wait_for(gateway.ready.wait(), 10)
    await asyncio.wait_for(gateway.bridge.connected.wait(), 10)  # subscribed
    try:
        yield gateway, task
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_a_killed_gateway_comes_back_with_its_proposals(
    mosquitto: Mosquitto, probe: MqttProbe, tmp_path: Path
) -> None:
    async with simulators(2, plugged=True) as sims:
        config = site_config(
            mosquitto,
            [modbus_charger("bay-1", sims[0]), modbus_charger("bay-2", sims[1])],
            pools=[{"name": "default", "chargers": ["bay-1", "bay-2"], "default_power": 4200.0}],
            state={"directory": str(tmp_path)},
            distribution={"ramp_up_rate": 80.0},
        )
        propose = f"{BASE}/pools/default/propose_power"
        async with started(config) as (gateway, task):
            await probe.publish(propose, {"source": "hems", "power": 9660.0, "expires_in": None})
            bounded = {"upper": 20000.0}
            await probe.publish(
                propose, {"source": "short", "priority": 20, "bounds": bounded, "expires_in": 600}
            )
            controller = gateway.controllers["default"]
            await wait_until(
                lambda: sorted(controller.manager.sources()) == ["hems", "short"], what="both"
            )
            await wait_until(lambda: saved_with(tmp_path, "short"), what="saved at the next tick")
            task.cancel()  # as SIGKILL: no clean stop, only what was saved
            with contextlib.suppress(asyncio.CancelledError):
                await task
        saved = json.loads((tmp_path / "state.json").read_text())
        by_source = {p["source"]: p for p in saved["pools"]["default"]["proposals"]}
        assert by_source["hems"]["expires_at"] is None
        assert by_source["short"]["expires_at"] > saved["saved_at"] + 590
        start = len(probe.messages)
        async with started(config) as (gateway, _):
            controller = gateway.controllers["default"]
            assert sorted(controller.manager.sources()) == ["hems", "short"]
            assert controller.manager.expiry("hems") is None
            remaining = (controller.manager.expiry("short") or 0) - gateway.clock.now()
            assert 580 < remaining <= 601
            status = await probe.wait_for(
                f"{BASE}/pools/default/power_status/hems",
                lambda m: m.payload and m.json()["target_power"] == 9660.0,
                after=start,
            )
            assert status.json()["proposed_power"] == 9660.0
