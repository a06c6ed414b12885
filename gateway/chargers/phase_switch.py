"""Switching a charger between 1 and 3 phases, never under load.

The distributor decides the phase setting (`ChargerDecision.phases`); the pool's
controller carries a change out through a `PhaseSwitcher`, in the order every
implementation of the vendors' switch follows (contactors must not open under load):

1. pause: the limit is written as 0 A (by the controller, with its other cuts, so the
   fuse never sees the raises first); the runtime is marked `switching`, and the
   distributor reserves the current it will resume at on its new grid phases;
2. wait at 0 A for at least `SwitchTiming.pause`, and until a sample taken after the
   pause shows the EV drawing nothing (at most `confirm_timeout`; otherwise the switch
   is given up and the charger stays on its old setting);
3. write the profile's phase switch register (Alfen 1215: 1 or 3; Vestel 405: 0 or 1);
4. wait `settle` for the contactors and the EV, then resume: the runtime is no longer
   `switching`, and the controller's next distribution writes the limit for the new
   setting.

Timing: Alfen's Modbus document does not say how long the station must be at 0 A
before 1215 may be written, nor whether it pauses by itself; the values here are
those of the switch sequences in use (0 A confirmed as drawn within 10 s or so, 5 s
before the relays move, 5 s after), chosen on the safe side. Everything waits on the
runtime's injected clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gateway.adapters.base import ChargerError
from gateway.chargers.runtime import ChargerRuntime, WriteOutcome

log = logging.getLogger(__name__)

CHECK_INTERVAL = 0.5
"""Seconds between two looks at the latest sample while waiting for 0 A."""


@runtime_checkable
class SwitchesPhases(Protocol):
    """An adapter that can set its charger to 1 or 3 phases."""

    async def switch_phases(self, phases: int) -> None:
        """Write the phase setting (1 or 3). Raises `ChargerError` on failure."""
        ...


@dataclass(frozen=True, slots=True)
class SwitchTiming:
    """How long a switch waits at each step (s), and what counts as drawing nothing.

    Attributes:
        pause: Least time at 0 A before the switch register is written.
        confirm_timeout: Longest wait, from the pause, for a sample showing the EV
            drawing nothing; after it the switch is given up.
        settle: Time after the register write before the charger is resumed.
        idle_current: A phase at or below this (A) counts as carrying no load.
    """

    pause: float = 5.0
    confirm_timeout: float = 20.0
    settle: float = 5.0
    idle_current: float = 1.0


class PhaseSwitcher:
    """Carries out the phase switches of one charger (one at a time)."""

    def __init__(
        self,
        runtime: ChargerRuntime,
        timing: SwitchTiming | None = None,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.timing = timing or SwitchTiming()
        self._on_done = on_done
        self._paused_at: float | None = None
        self.switches = 0
        self.failures = 0
        self.tried = False
        """Whether a switch was tried since start: until then the charger's setting is
        not known (a previous run may have left it on one phase)."""

    def unsure_and_idle(self) -> bool:
        """The setting was never written by this run, and the charger is at 0 A with
        no load: writing the decided setting now cannot switch under load."""
        runtime = self.runtime
        sample = runtime.latest
        if self.tried or runtime.commanded not in (None, 0.0) or sample is None:
            return False
        return all(not amps > self.timing.idle_current for amps in sample.current.as_tuple())

    def paused(self) -> None:
        """The charger was just set to 0 A for a switch: it is switching from now on."""
        self._paused_at = self.runtime.clock.now()
        self.runtime.switching = True

    async def complete(self, phases: int) -> bool:
        """Wait at 0 A, write the switch register, settle; True when it switched.

        Never raises (apart from cancellation): a failure is logged and leaves the
        charger on its old setting, at 0 A until the next distribution.
        """
        runtime = self.runtime
        self.tried = True
        try:
            done = await self._sequence(phases)
        except ChargerError as exc:
            log.warning("charger %s: phase switch to %d failed: %s", runtime.id, phases, exc)
            done = False
        except TimeoutError:
            log.warning("charger %s: phase switch to %d: no answer", runtime.id, phases)
            done = False
        except Exception:  # a bug must not stop the controller
            log.exception("charger %s: phase switch to %d failed", runtime.id, phases)
            done = False
        finally:
            runtime.switching = False
            if self._on_done is not None:
                self._on_done()
        if done:
            self.switches += 1
        else:
            self.failures += 1
        return done

    async def _sequence(self, phases: int) -> bool:
        runtime, timing, clock = self.runtime, self.timing, self.runtime.clock
        paused_at = self._paused_at if self._paused_at is not None else clock.now()
        adapter = runtime.adapter
        if not isinstance(adapter, SwitchesPhases):
            raise ChargerError(f"charger {runtime.id}: its adapter cannot switch phases")
        await clock.sleep(paused_at + timing.pause - clock.now())
        while not self._drawing_nothing(paused_at):
            if clock.now() - paused_at >= timing.confirm_timeout:
                log.warning(
                    "charger %s: still drawing %.0f s after the pause; phase switch given up",
                    runtime.id,
                    clock.now() - paused_at,
                )
                return False
            await clock.sleep(CHECK_INTERVAL)
        if runtime.commanded != 0.0:  # someone raised it meanwhile: not at 0 A any more
            return False
        async with asyncio.timeout(runtime.capabilities.write_timeout):
            await adapter.switch_phases(phases)
        runtime.phases_in_use = phases
        log.info(
            "charger %s: switched to %d phase%s", runtime.id, phases, "" if phases == 1 else "s"
        )
        await clock.sleep(timing.settle)
        return True

    def _drawing_nothing(self, since: float) -> bool:
        """A sample taken after the pause shows no load on any phase."""
        sample = self.runtime.latest
        if sample is None or sample.timestamp <= since:
            return False
        return all(not amps > self.timing.idle_current for amps in sample.current.as_tuple())


class PoolSwitches:
    """The phase switchers of one pool's chargers that may switch, and their tasks.

    The controller asks `due` which chargers to switch after a distribution, writes
    their 0 A with its other cuts, then `start`s the switches whose pause was written.
    """

    def __init__(self, chargers: Iterable[ChargerRuntime], on_done: Callable[[], None]) -> None:
        self.switchers = {
            c.id: PhaseSwitcher(c, on_done=on_done)
            for c in chargers
            if c.config.phase_switching and c.capabilities.phase_switching
        }
        self._tasks: set[asyncio.Task[bool]] = set()

    def __contains__(self, charger_id: object) -> bool:
        return charger_id in self.switchers

    def due(self, decided: Mapping[str, int]) -> dict[str, int]:
        """Chargers to switch now: the phase setting decided differs from theirs (or
        theirs is not known yet, and they draw nothing: then it is written once)."""
        return {
            cid: decided[cid]
            for cid, switcher in self.switchers.items()
            if cid in decided
            and not switcher.runtime.switching
            and (decided[cid] != switcher.runtime.phases_in_use or switcher.unsure_and_idle())
        }

    def start(self, switches: Mapping[str, int], outcomes: Mapping[str, WriteOutcome]) -> None:
        """Carry out each switch whose pause at 0 A was written (or already held)."""
        for cid, phases in switches.items():
            outcome = outcomes.get(cid)
            if outcome is not None and not outcome.ok:
                continue  # not paused: no switch under load
            switcher = self.switchers[cid]
            switcher.paused()
            log.info("charger %s: switching to %d phase(s)", cid, phases)
            task = asyncio.ensure_future(switcher.complete(phases))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def cancel(self) -> None:
        """Stop every switch under way (the daemon is stopping)."""
        for task in self._tasks:
            task.cancel()
