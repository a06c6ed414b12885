"""Independent steps with retry and backoff, for what the gateway asks of a charge point.

When a charge point (re)connects the adapter re-installs the fail-safe, re-applies the
limit, configures sampling and triggers fresh status and meter values. Each is its own
step, run as its own task: a step that times out is retried with exponential backoff
(1 s, 2 s, 4 s ... at most 60 s) until it is answered or the connection ends, and never
holds up the others. An answer that refuses (CALLERROR, Rejected) is final for the
connection: it is logged once and not retried, because asking again gets the same
answer. The waits use the injected clock.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from gateway.adapters.base import ChargerProtocolError, ChargerUnreachable
from gateway.adapters.ocpp.clock import Clock

LOG = logging.getLogger(__name__)

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0


async def retry_step(
    name: str,
    step: Callable[[], Awaitable[None]],
    clock: Clock,
    first_backoff: float = FIRST_BACKOFF,
    max_backoff: float = MAX_BACKOFF,
    *,
    failed_once: bool = False,
) -> bool:
    """Run `step` until it succeeds (True) or is refused (False); see the module docstring.

    With `failed_once` the caller's own first attempt timed out: wait before the
    first try here. Cancelling the task (the connection ended) stops the retries.
    """
    delay = first_backoff
    if failed_once:
        await clock.sleep(delay)
        delay = min(delay * 2, max_backoff)
    attempt = 0
    while True:
        attempt += 1
        try:
            await step()
        except ChargerProtocolError as exc:
            LOG.warning("%s refused: %s", name, exc)
            return False
        except ChargerUnreachable as exc:
            # The first failure and then every fifth: a dead charge point stays quiet.
            log = LOG.warning if attempt == 1 or attempt % 5 == 0 else LOG.debug
            log("%s: %s; retry %d in %g s", name, exc, attempt, delay)
            await clock.sleep(delay)
            delay = min(delay * 2, max_backoff)
            continue
        if attempt > 1:
            LOG.info("%s succeeded at attempt %d", name, attempt)
        return True
