"""A pool's proposals and limits to and from the state file (gateway/state_file.py).

The power manager runs on monotonic time, which starts over at a reboot; the state
file keeps expiry as wall-clock time, the only clock that spans one. Saving converts
each expiry to Unix time (whole seconds: the file is rewritten only when something
changed, not for clock jitter); restoring converts back, never granting a proposal
more time than the longest age the config allows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from gateway.chargers import ChargerRuntime
from gateway.clock import Clock, wall_at
from gateway.core.model import Bounds
from gateway.core.power_manager import PowerManager, Proposal
from gateway.state_file import PoolState, SavedProposal

log = logging.getLogger(__name__)


def saved_pool_state(
    manager: PowerManager, chargers: Sequence[ChargerRuntime], clock: Clock
) -> PoolState:
    """The live proposals (expiry as Unix time) and the limits the chargers accepted."""
    proposals = []
    for source in manager.sources():
        proposal = manager.proposal(source)
        if proposal is None:
            continue
        expiry = manager.expiry(source)
        proposals.append(
            SavedProposal(
                source=source,
                priority=proposal.priority,
                power=proposal.power,
                lower=proposal.bounds.lower,
                upper=proposal.bounds.upper,
                expires_at=None if expiry is None else round(wall_at(clock, expiry)),
            )
        )
    limits = {c.id: c.commanded for c in chargers if c.commanded is not None}
    return PoolState(proposals=proposals, limits=limits)


def restore_proposals(
    manager: PowerManager, state: PoolState, now: float, wall_now: float, longest: float
) -> list[str]:
    """Propose again every saved proposal that has not expired; their sources.

    `now` is monotonic, `wall_now` the Unix time at that moment; a remaining age is
    capped at `longest` seconds (a wall clock stepped back must not extend it).
    """
    restored = []
    for saved in state.proposals:
        expires: float | None = None
        if saved.expires_at is not None:
            remaining = saved.expires_at - wall_now
            if remaining <= 0:
                continue
            expires = now + min(remaining, longest)
        bounds = Bounds(saved.lower, saved.upper)
        try:
            manager.propose(
                Proposal(saved.source, saved.priority, saved.power, bounds, now, expires), now
            )
        except ValueError as exc:
            log.warning("saved proposal of %s not restored: %s", saved.source, exc)
            continue
        restored.append(saved.source)
    return restored
