"""Cancellation that sticks: helpers for loops that talk to libraries mid-request.

A Modbus or MQTT client may turn the cancellation of a request in flight into an
error of its own. A loop that catches that error and goes on would ignore the stop
that cancelled it, and the daemon's shutdown would hang. Loops call
`honour_cancellation()` after handling an error; the daemon's stop also cancels its
tasks again and again until they are done (`cancel_until_done`).
"""

from __future__ import annotations

import asyncio


def honour_cancellation() -> None:
    """Raise CancelledError when the current task was asked to stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_until_done(tasks: list[asyncio.Task[None]], interval: float = 0.25) -> None:
    """Cancel `tasks` again and again, every `interval` seconds, until all are done."""
    while pending := [task for task in tasks if not task.done()]:
        await asyncio.sleep(interval)
        for task in pending:
            task.cancel()


async def insist_when_cancelled(tasks: list[asyncio.Task[None]]) -> None:
    """Wait; when the group is cancelled from outside (not by `stop()`), insist too."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        insisting = asyncio.create_task(cancel_until_done(tasks))
        _INSISTING.add(insisting)
        insisting.add_done_callback(_INSISTING.discard)
        raise


_INSISTING: set[asyncio.Task[None]] = set()
"""Insisting tasks, referenced until they finish (the loop keeps only weak ones)."""
