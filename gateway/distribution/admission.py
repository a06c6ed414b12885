"""Who may charge at all: the 6 A floor makes sharing a question of admission first.

Max-min filling needs every admitted EV's minimum to fit. When not every EV fits at
its minimum, EVs are admitted one by one in a stable, fair order and skipped when
their minimum does not fit on some link (grid phase or power target):

1. PROTECTED - charging for less than the minimum on time, an EV seen not to
   resume after a pause (it is not paused again unless a limit needs it), and the
   "on" half of a wake-up toggle;
2. CHARGING - charging, not due for rotation;
3. WAITING - paused or new, past the minimum off time, largest deficit first,
   together with DUE - charging for at least a rotation period, ranked as if it had
   waited a rotation period more than it has: it yields its place only to a waiter
   whose deficit is larger by that much (and who fits);
4. IDLE - drawing nothing for a while (full or asleep): last.

The deficit is the time an EV waited for power over its whole session, so turns
follow who has had least, not a fixed slot; the rotation period is both the shortest
slot and the hysteresis, which keeps pauses to one or two per EV and night. Within
groups the EV that waited least comes last (then the one charging longest), so a cut
sheds the one that had the most. Skipping lets a 1-phase EV use a
phase with room while a 3-phase EV does not fit; to stop that from starving the
3-phase EV, once a waiter has waited a full rotation period and still does not fit,
no later waiter is started (head-of-line reservation): the room freed by rotating
DUE EVs then goes to it.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

_EPS = 1e-9


class Priority(IntEnum):
    """Admission groups, best first."""

    PROTECTED = 0
    CHARGING = 1
    WAITING = 2
    DUE = 3
    IDLE = 4


@dataclass(frozen=True, slots=True)
class Candidate:
    """An EV asking to be admitted at its minimum current."""

    key: str
    priority: Priority
    rank: tuple[float, ...]
    """Order within the group, smallest first (e.g. minus the session deficit)."""
    minimum: float
    usage: Mapping[Hashable, float]
    """Per link it crosses, the link capacity one ampere of this EV uses."""
    starving: bool = False
    """A waiter that has waited at least a rotation period."""


def priority_of(
    *,
    on_since: float | None,
    waiting_since: float | None,
    waited: float,
    keep: bool,
    waking: bool,
    idle: bool,
    now: float,
    min_on_time: float,
    rotation_period: float,
) -> tuple[Priority, tuple[float, ...], bool]:
    """An EV's admission group, its rank within the group, and whether it starves.

    `waited` is the EV's deficit (s waited this session); `keep` marks an EV seen not
    to resume and `waking` one in the "on" half of a wake-up toggle. A DUE EV ranks
    among the waiters as if it had waited a rotation period more than it has.
    """
    if waking:
        return Priority.PROTECTED, (0.0, -math.inf, 0.0), False
    if idle:
        # Charging idle EVs keep their place before paused ones; then by age.
        return Priority.IDLE, (-(on_since if on_since is not None else -math.inf),), False
    first = 0.0 if keep else 1.0
    if on_since is not None:
        charged = now - on_since
        if charged < min_on_time or keep:
            return Priority.PROTECTED, (first, -waited, -on_since), False
        if charged < rotation_period:
            return Priority.CHARGING, (first, -waited, -on_since), False
        return Priority.DUE, (first, -(waited + rotation_period), -on_since), False
    since = waiting_since if waiting_since is not None else now
    return Priority.WAITING, (first, -waited, since), now - since >= rotation_period


def _stage(priority: Priority) -> Priority:
    """WAITING and DUE EVs are ranked together, by deficit (DUE with its hysteresis)."""
    return Priority.WAITING if priority == Priority.DUE else priority


def admission_order(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Candidates in the order they are offered their minimum (ties by key)."""
    return sorted(candidates, key=lambda c: (_stage(c.priority), c.rank, c.key))


def admit(
    candidates: Sequence[Candidate], capacity: Mapping[Hashable, float]
) -> tuple[list[str], list[str]]:
    """Admit candidates in `admission_order` while their minimum fits on every link.

    Returns (admitted keys in admission order, refused keys in admission order).
    """
    used: dict[Hashable, float] = {}
    admitted: list[str] = []
    refused: list[str] = []
    reserved_for_starving = False
    for candidate in admission_order(candidates):
        if candidate.priority == Priority.WAITING and reserved_for_starving:
            refused.append(candidate.key)
            continue
        fits = all(
            used.get(link, 0.0) + coef * candidate.minimum <= capacity.get(link, math.inf) + _EPS
            for link, coef in candidate.usage.items()
        )
        if fits:
            admitted.append(candidate.key)
            for link, coef in candidate.usage.items():
                used[link] = used.get(link, 0.0) + coef * candidate.minimum
        else:
            refused.append(candidate.key)
            if candidate.priority == Priority.WAITING and candidate.starving:
                reserved_for_starving = True
    return admitted, refused
