"""A pool's new limits reach the chargers cuts first, raises after: the fuse never
sees a raise before the cut that makes room for it. Real Modbus simulators; each
stamps the writes it accepts."""

from __future__ import annotations

import contextlib

from gateway.adapters.factory import open_runtime
from gateway.chargers.writes import write_limits
from gateway.clock import FakeClock
from tests.harness import modbus_charger, simulators
from tests.runtime_helpers import runtime_config


async def test_every_cut_is_written_before_any_raise() -> None:
    async with simulators(4, plugged=True) as sims, contextlib.AsyncExitStack() as stack:
        clock = FakeClock()
        chargers = []
        for index, sim in enumerate(sims):
            config = runtime_config(modbus_charger(f"bay-{index}", sim))
            chargers.append(await stack.enter_async_context(
                open_runtime(config.chargers[0], config, clock)
            ))  # fmt: skip
        start = {"bay-0": 6.0, "bay-1": 16.0, "bay-2": 6.0, "bay-3": 16.0}
        first = await write_limits(chargers, start)
        assert all(outcome.ok for outcome in first.values())
        # 0 and 2 rise, 1 and 3 are cut; the raises come first in the mapping
        outcomes = await write_limits(
            chargers, {"bay-0": 16.0, "bay-2": 16.0, "bay-1": 6.0, "bay-3": 6.0}
        )
        assert [c.commanded for c in chargers] == [16.0, 6.0, 16.0, 6.0]
        assert all(outcome.ok for outcome in outcomes.values())
        cuts = [sims[1].writes[-1][0], sims[3].writes[-1][0]]
        raises = [sims[0].writes[-1][0], sims[2].writes[-1][0]]
        assert max(cuts) <= min(raises)
        # a charger whose limit is unknown counts as a cut: it may draw anything
        chargers[2].commanded = None
        await write_limits(chargers, {"bay-1": 10.0, "bay-2": 10.0})  # 1: a raise from 6 A
        assert sims[2].writes[-1][0] <= sims[1].writes[-1][0]
