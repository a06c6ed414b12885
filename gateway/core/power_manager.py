"""The pool's priority power manager: many actors' proposals resolved into one target.

Pure code (no I/O, no asyncio; the clock is passed in as float seconds, from the
caller's monotonic clock), implementing the Frequenz SDK's "matryoshka" algorithm:

- Every actor (`source`) holds at most one `Proposal`: a preferred power and/or
  bounds, at a priority. Higher priorities bound lower ones, like nested dolls.
- Proposals are walked from the highest priority to the lowest. Among equal
  priorities the source whose name sorts **last** counts as the higher one (the SDK's
  tie-break), so the source that sorts first has the final say on the power.
- The lowest-priority proposal that gives a power decides the target, clamped into
  the system bounds narrowed by every proposal above it. The walk stops as soon as
  those bounds become empty: lower proposals are then ignored.
- With no proposal giving a power the target is 0 W.

Where we differ from the SDK, on purpose:

- `drop_expired` recomputes the target at once (the SDK waits for the next event),
  so an expired proposal stops steering the chargers on time.
- Each proposal carries its own expiry (an absolute time on the caller's clock, or
  None for a lasting set-point that holds until withdrawn or replaced); the
  manager's `max_proposal_age` is only the default for proposals that give none.
- A proposal that arrives before any system bounds is kept (the SDK discards it);
  while the inclusion bounds are unknown the target is 0 W, and it is recomputed when
  bounds arrive.
- An optional `default_power` acts as a permanent proposal below every real one, so
  EVs can charge when no actor proposes anything. Being the lowest proposal with a
  power, it decides whenever it is walked: actors above it steer it with bounds, and
  an actor's preferred power without bounds is overridden by it, exactly as by any
  lower-priority proposal in the SDK.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

from gateway.core.bounds_math import (
    Interval,
    Options,
    Zone,
    adjust_exclusion_bounds,
    as_bounds,
    as_interval,
    clamp_to_bounds,
    exclusion_zone,
    inside_zone,
    intersect,
    is_empty,
    nearest,
)
from gateway.core.model import Bounds, SystemBounds

DEFAULT_POWER_SOURCE = "(default_power)"
"""Source name of the `default_power` proposal; parentheses keep it apart from every
name an actor may use (`[A-Za-z0-9_-]{1,64}`), so no actor can replace or withdraw it."""

UNKNOWN_INCLUSION: Interval = (0.0, 0.0)
"""Running bounds while the system inclusion bounds are unknown: only 0 W is safe."""


class DefaultExpiry(enum.Enum):
    """Marker type of `DEFAULT_EXPIRY` (an enum so type checkers can tell it apart)."""

    DEFAULT = "default"


DEFAULT_EXPIRY = DefaultExpiry.DEFAULT
"""`Proposal.expires` when the proposal gives none: `created + max_proposal_age`."""

Expiry = float | None | DefaultExpiry


@dataclass(frozen=True, slots=True)
class Proposal:
    """One actor's wish: a preferred power and/or bounds for everything below it.

    `power` None leaves the target to others (the bounds still restrict lower
    priorities); `power` None with both bounds None withdraws the source's proposal.
    `created` (s, the caller's monotonic clock) is when it was made. `expires` is when
    it stops counting, on the same clock: a time (dropped by the first `drop_expired`
    strictly after it), None for "until withdrawn or replaced", or `DEFAULT_EXPIRY`
    for `created + max_proposal_age` of the manager it is given to.
    """

    source: str
    priority: int
    power: float | None
    bounds: Bounds
    created: float
    expires: Expiry = DEFAULT_EXPIRY

    def __post_init__(self) -> None:
        for name, value in (
            ("power", self.power),
            ("bounds.lower", self.bounds.lower),
            ("bounds.upper", self.bounds.upper),
        ):
            if value is not None and not math.isfinite(value):
                raise ValueError(
                    f"proposal from {self.source!r}: {name} is {value}; "
                    "give a finite number of W, or None to leave it open"
                )
        if isinstance(self.expires, float | int) and math.isnan(self.expires):
            raise ValueError(f"proposal from {self.source!r}: expires is NaN; give a time or None")

    @property
    def withdraws(self) -> bool:
        """True when the proposal carries nothing: it takes the source's proposal back."""
        return self.power is None and self.bounds.lower is None and self.bounds.upper is None


@dataclass(frozen=True, slots=True)
class SourceReport:
    """What a source at `priority` is told: the pool's target and the room it has.

    `bounds` are the inclusion bounds available at this priority: the system inclusion
    bounds narrowed by every proposal of strictly higher priority; None while the
    system inclusion bounds are unknown. `exclusion` is the system's exclusion zone
    as given (None when there is none), for `adjust_to_bounds`.
    """

    priority: int
    target_power: float
    bounds: Bounds | None
    exclusion: Bounds | None = None

    def adjust_to_bounds(self, power: float) -> Options:
        """The deliverable powers nearest to `power` at this priority (see module fn)."""
        return adjust_to_bounds(power, self.bounds, self.exclusion)


def adjust_to_bounds(power: float, bounds: Bounds | None, exclusion: Bounds | None) -> Options:
    """The (low, high) deliverable powers nearest to `power`, as the SDK's report offers.

    `bounds` are inclusion bounds (a `None` side is unbounded); None bounds, i.e.
    unknown, offer nothing: (None, None). See `bounds_math.clamp_to_bounds` for the
    rules; an actor can use this to propose something that will not be clamped.
    """
    if bounds is None:
        return (None, None)
    return clamp_to_bounds(power, as_interval(bounds), exclusion_zone(exclusion))


class PowerManager:
    """Resolves the proposals of one pool into a target power (W), SDK "matryoshka" style.

    Proposals are kept per source: a new proposal from a source replaces its previous
    one, even at another priority. Walk order is priority descending, then source name
    descending (so on equal priority the name that sorts last is the higher one). The
    target is recomputed on every change: `propose`, `set_system_bounds`, and
    `drop_expired` when it drops something.
    """

    def __init__(self, max_proposal_age: float = 60.0, default_power: float | None = None) -> None:
        if not (math.isfinite(max_proposal_age) and max_proposal_age > 0):
            raise ValueError(
                f"max_proposal_age is {max_proposal_age}; give a positive number of seconds"
            )
        if default_power is not None and not math.isfinite(default_power):
            raise ValueError(f"default_power is {default_power}; give a finite number of W")
        self._max_age = max_proposal_age
        self._default: Proposal | None = None
        if default_power is not None:
            # Its priority is never compared: it is always walked last.
            self._default = Proposal(
                DEFAULT_POWER_SOURCE, -(2**63), default_power, Bounds(None, None), 0.0
            )
        self._proposals: dict[str, Proposal] = {}
        self._system = SystemBounds(inclusion=None, exclusion=None)
        self._target = 0.0

    # ------------------------------------------------------------------ inputs
    def set_system_bounds(self, bounds: SystemBounds, now: float) -> bool:
        """Take the pool's new system bounds; True when the target changed.

        `now` is taken for a uniform interface: bounds do not age here.
        """
        self._system = bounds
        return self._recompute()

    def propose(self, proposal: Proposal, now: float) -> None:
        """Store, replace or withdraw `proposal.source`'s proposal, and recompute the target.

        The proposal is stored with its expiry resolved (`DEFAULT_EXPIRY` becomes
        `created + max_proposal_age`); it is judged by `drop_expired` only, `now` is
        taken for a uniform interface. Raises ValueError for the reserved source name
        `DEFAULT_POWER_SOURCE`.
        """
        if proposal.source == DEFAULT_POWER_SOURCE:
            raise ValueError(f"source name {DEFAULT_POWER_SOURCE!r} is reserved; choose another")
        if proposal.withdraws:
            self._proposals.pop(proposal.source, None)
        else:
            if proposal.expires is DEFAULT_EXPIRY:
                proposal = replace(proposal, expires=proposal.created + self._max_age)
            self._proposals[proposal.source] = proposal
        self._recompute()

    def drop_expired(self, now: float) -> list[str]:
        """Drop proposals whose expiry lies before `now`; return their sources, sorted.

        "Before" is strictly: a proposal is still alive at its expiry time, as in the
        SDK. Lasting proposals (expiry None) are never dropped here. Unlike the SDK the
        target is recomputed at once, so a silent actor stops steering the pool on time.
        """
        expired = sorted(
            source
            for source, proposal in self._proposals.items()
            if _expired(_expiry(proposal), now)
        )
        for source in expired:
            del self._proposals[source]
        if expired:
            self._recompute()
        return expired

    # ------------------------------------------------------------------ outputs
    @property
    def target(self) -> float:
        """The current target power of the pool (W); 0 W when no proposal gives one."""
        return self._target

    @property
    def system_bounds(self) -> SystemBounds:
        """The system bounds last given (both None before the first)."""
        return self._system

    def next_expiry(self) -> float | None:
        """The earliest expiry among live proposals; None when none will expire.

        A proposal is dropped by the first `drop_expired` call *after* this time, so a
        timer should fire at or just after it. Lasting proposals do not count.
        """
        expiries = [e for e in map(_expiry, self._proposals.values()) if e is not None]
        return min(expiries, default=None)

    def expiry(self, source: str) -> float | None:
        """When `source`'s live proposal expires (None: lasting, or no proposal)."""
        proposal = self._proposals.get(source)
        return None if proposal is None else _expiry(proposal)

    def sources(self) -> list[str]:
        """The sources with a live proposal, highest first in walk order.

        The `default_power` proposal is not an actor's and is not listed.
        """
        return [proposal.source for proposal in self._ordered()]

    def proposal(self, source: str) -> Proposal | None:
        """The source's live proposal, or None when it has none."""
        return self._proposals.get(source)

    def report(self, source: str) -> SourceReport | None:
        """The report for a live proposal's source, or None when it has none."""
        proposal = self._proposals.get(source)
        if proposal is None:
            return None
        return self.report_for_priority(proposal.priority)

    def report_for_priority(self, priority: int) -> SourceReport:
        """The report for an actor at `priority` (live or not), SDK report semantics.

        Starting from the system inclusion bounds, the proposals of strictly higher
        priority narrow the bounds one by one, highest first. A proposal whose bounds
        lie wholly inside the exclusion zone is skipped; at the first proposal whose
        bounds do not meet the running bounds the narrowing stops (the lower
        proposals are ignored, as they are by the target calculation); after each
        narrowing the ends are moved out of the exclusion zone.
        """
        exclusion = self._system.exclusion
        running = self._inclusion()
        if running is None:
            return SourceReport(priority, self._target, None, exclusion)
        zone = exclusion_zone(exclusion)
        for proposal in self._ordered():
            if proposal.priority <= priority:
                break
            theirs = as_interval(proposal.bounds, fill=running)
            if inside_zone(theirs, zone):
                continue
            narrowed = intersect(running, theirs)
            if is_empty(narrowed):
                break
            running = adjust_exclusion_bounds(narrowed, zone)
        return SourceReport(priority, self._target, as_bounds(running), exclusion)

    # ------------------------------------------------------------------ internals
    def _ordered(self) -> list[Proposal]:
        """Live proposals, highest first: priority, then source name, both descending."""
        return sorted(self._proposals.values(), key=lambda p: (p.priority, p.source), reverse=True)

    def _walk(self) -> Iterator[Proposal]:
        """The proposals in walk order, the `default_power` one last.

        `default_power` only decides when no actor's proposal gave a power: it is what
        EVs get when nobody asks for anything, never an override of an actor's power
        (the plain matryoshka rule would let the lowest proposal, the default, win).
        It is still clamped into the bounds of every actor's proposal.
        """
        yield from self._ordered()
        if self._default is not None:
            yield self._default

    def _inclusion(self) -> Interval | None:
        """The system inclusion bounds as an interval; None when unknown.

        A NaN side cannot be reasoned about, so it makes the bounds unknown too.
        """
        inclusion = self._system.inclusion
        if inclusion is None:
            return None
        interval = as_interval(inclusion)
        if math.isnan(interval[0]) or math.isnan(interval[1]):
            return None
        return interval

    def _recompute(self) -> bool:
        """Recompute the target; True when it changed."""
        previous = self._target
        self._target = self._compute_target()
        return self._target != previous

    def _compute_target(self) -> float:
        """The matryoshka walk: highest priority first, the lowest power giver decides."""
        zone: Zone | None = exclusion_zone(self._system.exclusion)
        inclusion = self._inclusion()
        running = UNKNOWN_INCLUSION if inclusion is None else inclusion
        target = 0.0
        decided = False
        for proposal in self._walk():
            if is_empty(running):
                break
            if proposal.power is not None and not (proposal is self._default and decided):
                chosen = nearest(proposal.power, clamp_to_bounds(proposal.power, running, zone))
                if chosen is not None:
                    target = chosen
                    decided = True
            theirs = as_interval(proposal.bounds, fill=running)
            if inside_zone(theirs, zone):
                continue
            running = adjust_exclusion_bounds(intersect(running, theirs), zone)
        return target


def _expiry(proposal: Proposal) -> float | None:
    """A stored proposal's expiry; stored proposals never hold `DEFAULT_EXPIRY`."""
    expires = proposal.expires
    return None if isinstance(expires, DefaultExpiry) else expires


def _expired(expiry: float | None, now: float) -> bool:
    """True when a proposal with `expiry` no longer counts at `now` (None never expires)."""
    return expiry is not None and now > expiry
