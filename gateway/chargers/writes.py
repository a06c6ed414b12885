"""Writing a pool's new limits: every cut before any raise, so a fuse never sees both."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence

from gateway.chargers.runtime import ChargerRuntime, WriteOutcome


async def write_limits(
    chargers: Sequence[ChargerRuntime], pending: Mapping[str, float]
) -> dict[str, WriteOutcome]:
    """Write `pending` (charger id -> A): every cut first, then the raises.

    Within each group the writes run concurrently, so one slow charger delays nobody
    else's write (each has its own deadline). A charger whose limit is unknown counts
    as a cut: it may be drawing anything.
    """
    by_id = {charger.id: charger for charger in chargers}
    cuts: list[str] = []
    raises: list[str] = []
    for cid, amps in pending.items():
        (cuts if amps < (by_id[cid].commanded or math.inf) else raises).append(cid)
    outcomes: dict[str, WriteOutcome] = {}
    for group in (cuts, raises):
        results = await asyncio.gather(*(by_id[cid].write_limit(pending[cid]) for cid in group))
        outcomes.update(zip(group, results, strict=True))
    return outcomes
