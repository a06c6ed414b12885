"""`[distribution] recheck_interval`: a quiet pool distributes every few seconds, a
change distributes at the next tick."""

from __future__ import annotations

import asyncio

from gateway.clock import FakeClock
from gateway.distribution_bridge import Recheck
from tests.conftest import Mosquitto
from tests.harness import modbus_charger, running_gateway, simulators, site_config
from tests.runtime_helpers import run_for
from tests.test_e2e_control import wait_until


def test_due_when_the_inputs_change_or_the_interval_passed() -> None:
    recheck = Recheck(5.0)
    quiet = (1000.0, None, ("a", 6.0))
    assert recheck.due(quiet, 0.0)
    recheck.ran(quiet, 0.0)
    assert not recheck.due(quiet, 4.9)
    assert recheck.due((1000.0, None, ("a", 6.1)), 1.0)  # a charger's current moved
    assert recheck.due((2000.0, None, ("a", 6.0)), 1.0)  # the target moved
    assert recheck.due(quiet, 5.0)
    recheck.forget()  # a write failed: due again at once
    assert recheck.due(quiet, 0.1)
    assert Recheck(0.0).due(quiet, 0.0)  # 0: always


async def _runs_per_tick(mosquitto: Mosquitto, interval: float) -> tuple[int, int, int]:
    """(ticks, distributions in 10 quiet seconds, distributions in 3 s after an unplug)."""
    clock = FakeClock()
    async with simulators(2, plugged=True) as sims:
        config = site_config(
            mosquitto,
            [modbus_charger(f"bay-{i}", sim, poll_interval=1.0) for i, sim in enumerate(sims)],
            pools=[{"name": "site", "chargers": ["bay-0", "bay-1"], "default_power": 12000.0}],
            power={"resampling_period": 1.0, "max_data_age": 5.0},
            distribution={"ramp_up_rate": 80.0, "recheck_interval": interval},
        )
        async with running_gateway(config, clock) as gateway:
            await asyncio.wait_for(gateway.bridge.connected.wait(), 10)
            distributor = gateway.controllers["site"].distributor
            await run_for(clock, 15.0, 3, step=0.5)  # started, ramped, settled
            ticks, runs = gateway.ticks, distributor.runs
            await run_for(clock, 10.0, 3, step=0.5)
            ticks, quiet = gateway.ticks - ticks, distributor.runs - runs
            runs = distributor.runs
            sims[0].unplug()
            await run_for(clock, 3.0, 3, step=0.5)  # a poll sees it, the next tick acts
            after = distributor.runs - runs
            controller = gateway.controllers["site"]

            def cut() -> bool:  # the write is network I/O: it may still be under way
                result = controller.last_result
                return result is not None and result.limits["bay-0"] == 0.0

            await wait_until(cut, what="bay-0 cut to 0 A")
    return ticks, quiet, after


async def test_a_quiet_pool_distributes_every_interval_and_a_change_at_once(
    mosquitto: Mosquitto,
) -> None:
    ticks, quiet, after = await _runs_per_tick(mosquitto, 5.0)
    assert ticks == 10 and quiet == 2  # 10 quiet ticks, one distribution each 5 s
    assert after >= 1


async def test_recheck_zero_distributes_at_every_tick(mosquitto: Mosquitto) -> None:
    ticks, quiet, after = await _runs_per_tick(mosquitto, 0.0)
    assert ticks == 10 and quiet == 10
    assert after >= 2
