"""Modbus RTU: several Heidelberg Energy Control boxes on one RS-485 bus.

A real serial line made of a pseudo-terminal pair (socat): the simulated boxes answer on
one end (a pymodbus RTU serial server, one unit id per box), the adapters talk on the
other through one shared serial connection. No mocks of the Modbus path.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pty
import shutil
import subprocess
import termios
import time
import tomllib
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.adapters.base import ChargerUnreachable
from gateway.adapters.factory import open_charger
from gateway.adapters.modbus import rtu
from gateway.adapters.modbus.rtu import ModbusRtuCharger, SerialBus, SerialSettings
from gateway.config import config_from_dict
from gateway.core.model import CableState, ComponentState
from gateway.simulator.layout_base import ChargerView
from gateway.simulator.modbus_server import SimulatedCharger
from gateway.simulator.rtu_layouts import STANDBY_DISABLED, STANDBY_ENABLED
from gateway.simulator.rtu_server import SimulatedRtuBus
from tests.modbus_helpers import ManualClock

PROFILE = "heidelberg-energy-control"
VOLTAGES = (229.0, 231.0, 233.0)
BusEnds = tuple[str, str]


# -- the serial line -----------------------------------------------------------------


def _even_parity_settable_on_a_pty() -> bool:
    main, sub = pty.openpty()
    try:
        attrs = termios.tcgetattr(sub)
        attrs[2] |= termios.PARENB
        attrs[0] &= ~termios.INPCK  # as pyserial sets it
        termios.tcsetattr(sub, termios.TCSANOW, attrs)
        return True
    except termios.error:
        return False
    finally:
        os.close(main)
        os.close(sub)


@pytest.fixture(autouse=True)
def _pty_accepts_parity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Some kernels (sandboxes) refuse PARENB on a pty unless INPCK is set too, while
    pyserial clears INPCK: there, a parity setting retries with INPCK. A pty carries no
    parity bits either way, and a real serial driver is not affected."""
    if _even_parity_settable_on_a_pty():
        return
    original = termios.tcsetattr

    def tcsetattr(fd: Any, when: int, attrs: list[Any]) -> None:
        try:
            original(fd, when, attrs)
        except termios.error as exc:
            if exc.args[0] != 22 or not attrs[2] & termios.PARENB:
                raise
            original(fd, when, [attrs[0] | termios.INPCK, *attrs[1:]])

    monkeypatch.setattr(termios, "tcsetattr", tcsetattr)


@pytest.fixture
def bus_ends(tmp_path: Path) -> Iterator[BusEnds]:
    """Two linked pseudo-terminals (adapter end, simulator end) from socat."""
    socat = shutil.which("socat") or shutil.which("socat", path="/usr/bin:/usr/sbin")
    if socat is None:
        pytest.fail(
            "socat is missing: the RTU tests need it for a pseudo-terminal pair "
            "(apt-get install socat)"
        )
    a, b = tmp_path / "a", tmp_path / "b"
    proc = subprocess.Popen(
        [socat, "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 5.0
        while not (a.exists() and b.exists()):
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.poll() is not None and proc.stderr else ""
                pytest.fail(f"socat did not create the pty pair: {err.strip()}")
            time.sleep(0.02)
        yield str(a), str(b)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def boxes(*units: int, **kwargs: Any) -> list[SimulatedCharger]:
    kwargs.setdefault("voltages", VOLTAGES)
    return [SimulatedCharger(PROFILE, unit_id=unit, **kwargs) for unit in units]


@contextlib.asynccontextmanager
async def serving(end: str, sims: list[SimulatedCharger]) -> AsyncIterator[SimulatedRtuBus]:
    """The simulated boxes answering on `end` (19200 8E1, as the vendor sets the bus)."""
    async with SimulatedRtuBus(end, sims, baudrate=19200, parity="E") as server:
        yield server


def adapter(
    end: str,
    unit: int,
    *,
    timeout: float = 0.5,
    delay: float = 0.0,
    max_current: float = 16.0,
    clock: Callable[[], float] = time.monotonic,
) -> ModbusRtuCharger:
    return ModbusRtuCharger(
        f"box-{unit}",
        SerialSettings(end, baudrate=19200, parity="E", delay=delay),
        unit,
        PROFILE,
        max_current=max_current,
        wired_phases=3,
        timeout=timeout,
        clock=clock,
    )


@contextlib.asynccontextmanager
async def adapters(end: str, *units: int, **kwargs: Any) -> AsyncIterator[list[ModbusRtuCharger]]:
    chargers = [adapter(end, unit, **kwargs) for unit in units]
    try:
        yield chargers
    finally:
        for charger in chargers:
            await charger.close()


def expected(view: ChargerView | None) -> tuple[float, ...]:
    """What the adapter should decode from what the box showed (0.1 A, whole volts)."""
    assert view is not None
    return (
        *(round(c, 1) for c in view.currents),
        *(float(round(v)) for v in view.voltages),
        float(round(view.power)),
    )


def requested(sim: SimulatedCharger) -> set[tuple[int, int]]:
    """(function code, address) of every request the box received."""
    return {(r.function_code, r.address) for r in sim.recent_requests}


def decoded(sample: Any) -> tuple[float, ...]:
    return (*sample.current, *sample.voltage, sample.active_power)


# -- tests ---------------------------------------------------------------------------


async def test_two_boxes_on_one_bus_share_one_serial_line(bus_ends: BusEnds) -> None:
    near, far = bus_ends
    sims = boxes(1, 2)
    sims[0].plug(phases=3, ev_max_current=16.0)
    sims[1].plug(phases=1, ev_max_current=10.0)
    async with serving(far, sims), adapters(near, 1, 2) as (box1, box2):
        assert box1.transport is box2.transport
        assert await box1.set_current_limit(13.0) == 13.0
        assert await box2.set_current_limit(8.0) == 8.0
        one, two = await box1.read(), await box2.read()
        assert decoded(one) == expected(sims[0].last_view)
        assert decoded(two) == expected(sims[1].last_view)
        assert one.current.p1 == 13.0 and one.current.p3 == 13.0
        assert two.current.p1 == 8.0 and two.current.p2 == 0.0
        assert one.voltage.p2 == 231.0 and one.active_power > 0
        assert one.cable_state is CableState.EV_PLUGGED
        assert one.component_state is ComponentState.CHARGING
        assert one.current_limit == 13.0 and two.current_limit == 8.0


async def test_concurrent_requests_are_serialised(bus_ends: BusEnds) -> None:
    near, far = bus_ends
    sims = boxes(1, 2)
    sims[0].plug(phases=3, ev_max_current=16.0)
    async with serving(far, sims) as server, adapters(near, 1, 2) as (box1, box2):
        await box1.set_current_limit(10.0)
        # both pollers and the distributor at once, many times: a frame of one unit
        # interleaved with another's would fail its CRC or answer the wrong unit
        tasks: list[Coroutine[Any, Any, Any]] = [box1.read() for _ in range(15)]
        tasks += [box2.read() for _ in range(15)]
        tasks += [box1.set_current_limit(11.0), box2.set_current_limit(0.0)]
        results = await asyncio.gather(*tasks)
        for sample in results[:15]:
            assert sample.cable_state is CableState.EV_PLUGGED
            assert sample.voltage.p3 == 233.0 and sample.current.p1 in (10.0, 11.0)
        for sample in results[15:30]:
            assert sample.cable_state is CableState.UNPLUGGED and sample.active_power == 0.0
        bus = box1.transport
        assert isinstance(bus, SerialBus)
        assert bus.max_in_flight == 1
        assert sims[0].current_limit == 11.0 and sims[1].current_limit == 0.0
        # every frame on the line was a request one box took: nothing was lost or merged
        assert server.frames_received == sims[0].request_count + sims[1].request_count


async def test_inter_request_delay_spaces_the_requests(bus_ends: BusEnds) -> None:
    near, far = bus_ends
    async with serving(far, boxes(1, 2)), adapters(near, 1, 2, delay=0.05) as (box1, box2):
        await box1.read()  # connect and startup writes
        started = time.monotonic()
        await asyncio.gather(*(c.read() for c in (box1, box2) * 4))
        assert time.monotonic() - started >= 8 * 0.05 * 0.95


async def test_setpoint_in_tenths_of_an_amp_lands_in_register_261(bus_ends: BusEnds) -> None:
    near, far = bus_ends
    sims = boxes(1)
    async with serving(far, sims), adapters(near, 1, max_current=16.0) as (box,):
        assert await box.set_current_limit(10.37) == 10.3  # rounded down to 0.1 A
        assert sims[0].current_limit == 10.3
        assert (6, 261) in requested(sims[0])
        assert await box.set_current_limit(5.9) == 0.0  # below 6 A pauses: 0, never 59
        assert sims[0].current_limit == 0.0
        assert await box.set_current_limit(6.0) == 6.0
        assert sims[0].current_limit == 6.0
        assert await box.set_current_limit(25.0) == 16.0  # the box takes 60-160
        assert sims[0].current_limit == 16.0
        assert await box.read_safe_current() == 6.0  # holding 262


async def test_standby_disabled_at_start_and_again_after_a_failure(bus_ends: BusEnds) -> None:
    near, far = bus_ends
    sims = boxes(1)
    layout: Any = sims[0].layout
    async with serving(far, sims), adapters(near, 1, timeout=0.3) as (box,):
        assert layout.standby == STANDBY_ENABLED
        await box.read()
        assert layout.standby == STANDBY_DISABLED
        assert (6, 258) in requested(sims[0])
        await box.read()
        assert layout.standby_writes == 1  # once, not every poll
        # the box restarts (standby back to its factory setting) and misses a poll
        layout.standby = STANDBY_ENABLED
        sims[0].silence()
        with pytest.raises(ChargerUnreachable):
            await box.read()
        sims[0].resume()
        await box.read()
        assert layout.standby == STANDBY_DISABLED and layout.standby_writes == 2


async def test_watchdog_kept_alive_within_the_timeout_read_from_257(bus_ends: BusEnds) -> None:
    near, far = bus_ends
    sims = boxes(1, validity_time=4.0, safe_current=6.0)  # 257 reads 4000 ms
    sims[0].plug(phases=3, ev_max_current=16.0)
    clock = ManualClock()
    async with serving(far, sims), adapters(near, 1, clock=clock) as (box,):
        await box.set_current_limit(12.0)
        assert (3, 257) in requested(sims[0])
        assert box.keepalive_interval == 1.0  # a quarter of 4 s
        assert box.next_keepalive_due() == clock.now + 1.0
        writes = len(sims[0].writes)
        await box.keep_alive()
        assert len(sims[0].writes) == writes  # not due yet
        clock.advance(1.0)
        await box.keep_alive()
        sample = await box.read()
        assert len(sims[0].writes) == writes + 1  # rewritten when due
        assert sample.current.p1 == 12.0 and sims[0].applied_current_limit == 12.0


async def test_a_silent_unit_times_out_while_the_other_keeps_working(bus_ends: BusEnds) -> None:
    near, far = bus_ends
    sims = boxes(1, 2)
    sims[0].plug(phases=3, ev_max_current=16.0)
    async with serving(far, sims), adapters(near, 1, 2, timeout=0.3) as (box1, box2):
        await box1.set_current_limit(9.0)
        await box2.read()
        sims[1].silence()
        started = time.monotonic()
        with pytest.raises(ChargerUnreachable) as caught:
            await box2.read()
        assert time.monotonic() - started < 2.0
        message = str(caught.value)
        assert "box-2" in message and "unit 2" in message
        assert "input registers 5-18" in message and "no answer within 0.3 s" in message
        # the other box on the same line keeps answering, also while box 2 times out
        one, two = await asyncio.gather(box1.read(), box2.read(), return_exceptions=True)
        assert not isinstance(one, BaseException) and one.current.p1 == 9.0
        assert isinstance(two, ChargerUnreachable)
        with pytest.raises(ChargerUnreachable, match=r"unit 2\): writing .*no answer within 0.3 s"):
            await box2.set_current_limit(10.0)
        assert (await box1.read()).current.p2 == 9.0
        sims[1].resume()
        assert (await box2.read()).cable_state is CableState.UNPLUGGED


async def test_the_bus_is_closed_with_its_last_charger(bus_ends: BusEnds) -> None:
    near, far = bus_ends
    async with serving(far, boxes(1, 2)):
        box1, box2 = adapter(near, 1), adapter(near, 2)
        bus = box1.transport
        assert isinstance(bus, SerialBus) and bus.users == 2
        await asyncio.gather(box1.read(), box2.read())
        await box1.close()
        await box1.close()  # twice is fine
        assert bus.users == 1 and bus.connected
        await box2.read()
        await box2.close()
        assert bus.users == 0 and not bus.connected
        assert bus.key not in rtu._BUSES
        with pytest.raises(ChargerUnreachable, match="closed"):
            await box2.read()
        with pytest.raises(ValueError, match="same settings"):
            ModbusRtuCharger(
                "x", SerialSettings(near, baudrate=19200, parity="E"), 3, PROFILE, 16, 3
            )
            ModbusRtuCharger(
                "y", SerialSettings(near, baudrate=9600, parity="E"), 4, PROFILE, 16, 3
            )
    rtu._BUSES.clear()


async def test_missing_serial_port_is_unreachable(tmp_path: Path) -> None:
    box = ModbusRtuCharger("gone", SerialSettings(str(tmp_path / "ttyUSB9")), 1, PROFILE, 16, 3)
    try:
        with pytest.raises(ChargerUnreachable, match="cannot connect"):
            await box.read()
    finally:
        await box.close()


async def test_daemon_factory_opens_rtu_chargers_on_one_bus(bus_ends: BusEnds) -> None:
    near, far = bus_ends
    config = config_from_dict(
        tomllib.loads(
            f"""
            [[chargers]]
            id = "garage-left"
            adapter = "modbus"
            profile = "{PROFILE}"
            unit_id = 1
            serial = {{ port = "{near}", baudrate = 19200, parity = "E" }}

            [[chargers]]
            id = "garage-right"
            adapter = "modbus"
            profile = "{PROFILE}"
            unit_id = 2
            serial = {{ port = "{near}", baudrate = 19200, parity = "E" }}
            """
        )
    )
    sims = boxes(1, 2)
    sims[1].plug(phases=3, ev_max_current=16.0)
    async with serving(far, sims), contextlib.AsyncExitStack() as stack:
        left = await stack.enter_async_context(open_charger(config.chargers[0], config))
        right = await stack.enter_async_context(open_charger(config.chargers[1], config))
        assert isinstance(left, ModbusRtuCharger) and isinstance(right, ModbusRtuCharger)
        assert left.transport is right.transport
        assert await right.set_current_limit(7.5) == 7.5
        sample = await right.read()
        assert sample.current.p1 == 7.5 and sample.component_state is ComponentState.CHARGING
        assert (await left.read()).cable_state is CableState.UNPLUGGED
        assert sims[0].layout.standby == STANDBY_DISABLED  # type: ignore[attr-defined]
        bus = left.transport
    assert isinstance(bus, SerialBus) and bus.users == 0 and not bus.connected


async def test_heidelberg_watchdog_kept_alive_on_rtu_while_the_poll_backs_off(
    bus_ends: BusEnds,
) -> None:
    """The runtime's keepalive rewrites the setpoint within the box's watchdog (257)
    whatever the poll does; here every read fails and the poll backs off to 10 s."""
    from gateway.clock import FakeClock
    from tests.runtime_helpers import idle, run_for, running_runtime, runtime_config

    near, far = bus_ends
    config = runtime_config(
        {"id": "garage", "adapter": "modbus", "profile": PROFILE, "unit_id": 1,
         "poll_interval": 1.0, "timeout": 0.5,
         "serial": {"port": near, "baudrate": 19200, "parity": "E"}}
    )  # fmt: skip
    sims = boxes(1, validity_time=4.0)  # 257 reads 4000 ms: rewrite every second
    sims[0].plug(phases=3, ev_max_current=16.0)
    clock = FakeClock()
    async with serving(far, sims), running_runtime(config, clock) as runtime:
        await idle(clock, 1)
        assert (await runtime.write_limit(10.0)).ok
        assert isinstance(runtime.adapter, ModbusRtuCharger)
        assert runtime.adapter.keepalive_interval == 1.0  # a quarter of 257's 4 s
        sims[0].garbage = True  # reads now fail: nonsense state code
        rewrites: list[float] = []

        def count() -> None:
            rewrites.extend(clock.now() for _ in sims[0].writes[len(rewrites) + 1 :])

        await run_for(clock, 30.0, 2, step=0.25, each=count)
        assert runtime.failures >= 4 and runtime.backoff() == 10.0  # backing off
        gaps = [b - a for a, b in itertools.pairwise(rewrites)]
        assert len(rewrites) >= 25 and max(gaps) < 5.0  # well within the box's watchdog
        assert all(amps == 10.0 for _, amps in sims[0].writes)
        sims[0].garbage = False
