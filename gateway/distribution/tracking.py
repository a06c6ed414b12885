"""What the distributor remembers per charger between calls, and how it learns it.

- Sessions: an EV plugging in starts a session; unplugging forgets everything learnt
  about that EV (phases, caps, idleness) so the next EV starts from the worst case.
- EV phases: configured, or detected from measured currents (a phase above
  `active_current` is in use). Detection only widens within a session: an EV seen on
  one phase and later on three is counted on three from then on, at once, because
  undercounting would endanger the fuse. Until an EV draws, every wired phase counts.
- Reclaim (as ACN-Sim's SimpleRampdown, with a delay like OpenEMS): an EV drawing
  `reclaim_threshold` below its limit for `reclaim_delay` is capped at its draw plus
  `reclaim_margin` (never below the minimum); the cap is lifted when it draws within
  `probe_band` of its limit again, and then it ramps up like any other EV.
- Idleness: an admitted EV drawing nothing for `idle_timeout` is idle (full or
  asleep); it is offered power again every `idle_probe_period`.
- Resume (`update_resume`): an EV that stops drawing right after a cut below what
  it drew has a minimum above the limit: its minimum is raised by `wake_raise` (no
  pause). An EV started that draws nothing for `resume_timeout` did not resume.
  It gets a wake-up toggle (0 for `wake_pause`, then its minimum again: with the
  start, 0 -> min -> 0 -> min); from
  the second toggle on, the minimum offered rises by `wake_raise` (EVs that draw
  nothing below e.g. 8 A). After `wake_attempts` toggles it is stalled. Either way it
  is marked as seen not to resume and is no longer rotated out in this session. An
  EV that once went idle on its own (full) is not expected to draw when restarted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.core.model import ChargerSample
from gateway.distribution.config import DistributionConfig
from gateway.distribution.model import ResumeState
from gateway.distribution.waterfill import ceil_to_step


@dataclass(slots=True)
class ChargerMemory:
    """Mutable per-charger state kept by the distributor (internal)."""

    limit: float = 0.0
    """Last commanded limit (A per phase)."""
    commanded: bool = False
    """Whether a limit was ever decided for this charger."""
    session: bool = False
    """An EV was connected at the last fresh look."""
    on_since: float | None = None
    """When the current charging spell began; None while paused."""
    off_since: float | None = None
    """When the EV was last paused after charging (for the minimum off time)."""
    waiting_since: float | None = None
    """When the EV began to wait (plugged in, or paused)."""
    ev_terminals: frozenset[int] | None = None
    """Charger terminals the EV was seen drawing on during this session."""
    low_since: float | None = None
    """Since when the EV has drawn well below its limit."""
    cap: float | None = None
    """Reclaim cap (A), None when not reclaimed."""
    idle_since: float | None = None
    """Since when the admitted EV has drawn nothing."""
    idle_at: float | None = None
    """When the EV was declared idle; None when not idle."""
    reserve: float | None = None
    """Current assumed drawn while uncontrolled (kept until it is controlled again)."""
    waited: float = 0.0
    """Seconds this session the EV waited for power (its deficit, for rotation)."""
    last_draw: float = 0.0
    """Highest phase current measured at the previous call (A)."""
    lowered_at: float | None = None
    """When the limit was last lowered while the EV kept charging."""
    expect_since: float | None = None
    """Since when the EV is expected to draw (started, woken or cut); None if not."""
    expect_cut: bool = False
    """The expectation comes from a cut below what the EV drew (not from a start)."""
    wake_attempt: int = 0
    """Wake-up toggles tried since the EV last drew."""
    wake_off_since: float | None = None
    """Start of the 0 phase of a wake-up toggle; None when no toggle is pending."""
    resume: ResumeState = ResumeState.OK
    """Whether the EV took power after its last (re)start."""
    no_resume: bool = False
    """Seen not to resume in this session: never rotated out again."""
    learned_min: float | None = None
    """A minimum above the configured one, learnt from a wake-up (A)."""
    finished: bool = False
    """Went idle on its own this session (full): restarts are not expected to draw."""

    def start_session(self, now: float) -> None:
        """An EV plugged in: forget the previous EV, queue the new one."""
        self.session = True
        self.on_since = None
        self.off_since = None
        self.waiting_since = now
        self.ev_terminals = None
        self.low_since = None
        self.cap = None
        self.idle_since = None
        self.idle_at = None
        self.waited = 0.0
        self.last_draw = 0.0
        self.lowered_at = None
        self.expect_since = None
        self.expect_cut = False
        self.wake_attempt = 0
        self.wake_off_since = None
        self.resume = ResumeState.OK
        self.no_resume = False
        self.learned_min = None
        self.finished = False

    def end_session(self) -> None:
        """The EV left: nothing is kept about it."""
        self.start_session(0.0)
        self.session = False
        self.waiting_since = None


def measured_currents(sample: ChargerSample, wired: int) -> tuple[float, ...]:
    """The sample's current on each wired terminal (non-finite or negative as 0)."""
    values = sample.current.as_tuple()[:wired]
    return tuple(value if math.isfinite(value) and value > 0 else 0.0 for value in values)


def ev_terminals(
    memory: ChargerMemory, currents: tuple[float, ...], configured: int | None, active: float
) -> frozenset[int]:
    """Terminals the EV may draw on; updates the memory with what was measured.

    Configured phases are the first terminals (a 1-phase EV charges on L1); measured
    currents may widen them, never narrow them.
    """
    drawing = frozenset(index for index, value in enumerate(currents) if value > active)
    if drawing:
        seen = memory.ev_terminals or frozenset()
        memory.ev_terminals = seen | drawing
    if configured is not None:
        return frozenset(range(configured)) | (memory.ev_terminals or frozenset())
    if memory.ev_terminals is not None:
        return memory.ev_terminals
    return frozenset(range(len(currents)))


def update_reclaim(
    memory: ChargerMemory,
    draw: float,
    minimum: float,
    step: float,
    now: float,
    config: DistributionConfig,
) -> None:
    """Lower or lift the reclaim cap of a charging EV from its draw (max phase, A)."""
    limit = memory.limit
    if memory.cap is not None and draw >= limit - config.probe_band:
        memory.cap = None  # it takes what it is given: probe back up
        memory.low_since = None
        return
    if limit - draw > config.reclaim_threshold:
        if memory.low_since is None:
            memory.low_since = now
        elif now - memory.low_since >= config.reclaim_delay:
            cap = max(minimum, ceil_to_step(draw + config.reclaim_margin, step))
            memory.cap = cap if memory.cap is None else min(memory.cap, cap)
            memory.low_since = None
    else:
        memory.low_since = None


def update_idle(
    memory: ChargerMemory, draw: float, charging: bool, now: float, config: DistributionConfig
) -> bool:
    """Track whether the EV draws nothing; returns True while it counts as idle."""
    if draw > config.active_current:
        memory.idle_since = None
        memory.idle_at = None
        return False
    if memory.idle_at is not None:
        if now - memory.idle_at < config.idle_probe_period:
            return True
        memory.idle_at = None  # offer it power again
        memory.idle_since = None
        return False
    if not charging:
        memory.idle_since = None
        return False
    if memory.idle_since is None:
        memory.idle_since = now
    if now - memory.idle_since >= config.idle_timeout:
        memory.idle_at = now
        memory.finished = True
        return True
    return False


def update_resume(
    memory: ChargerMemory,
    draw: float,
    minimum: float,
    top: float,
    step: float,
    now: float,
    config: DistributionConfig,
) -> None:
    """Notice an EV that does not take power after a start and schedule its wake-up.

    `draw` is the highest phase current now, `minimum` the charger's minimum and
    `top` its maximum on the step. Call once per call for a controllable EV.
    """
    charging = memory.on_since is not None and memory.limit > 0
    if draw > config.active_current:
        memory.expect_since = None
        memory.expect_cut = False
        memory.wake_attempt = 0
        memory.wake_off_since = None
        memory.resume = ResumeState.OK
    elif charging:
        cut = memory.lowered_at
        if (
            memory.expect_since is None
            and cut is not None
            and now - cut <= config.resume_timeout
            and memory.last_draw >= memory.limit - config.probe_band
            and memory.last_draw > config.active_current
        ):
            memory.expect_since = cut  # stopped right after a cut: a higher minimum?
            memory.expect_cut = True
        since = memory.expect_since
        if since is not None and now - since >= config.resume_timeout and memory.expect_cut:
            # It was awake a moment ago: no toggle, only a higher minimum, step by step.
            base = max(memory.limit, memory.learned_min or minimum)
            memory.learned_min = min(top, ceil_to_step(base + config.wake_raise, step))
            memory.expect_since = now if memory.learned_min < top else None
        elif since is not None and now - since >= config.resume_timeout:
            memory.expect_since = None
            memory.no_resume = True
            if memory.wake_attempt < config.wake_attempts:
                memory.wake_attempt += 1
                memory.wake_off_since = now
                memory.resume = ResumeState.WAKING
                if memory.wake_attempt > 1:
                    base = memory.learned_min or minimum
                    memory.learned_min = min(top, ceil_to_step(base + config.wake_raise, step))
            else:
                memory.resume = ResumeState.STALLED
    memory.last_draw = draw
