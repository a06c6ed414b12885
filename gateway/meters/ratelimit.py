"""A warning logger that says a repeated problem once per interval, not once per message.

A meter bridged over MQTT may publish a bad payload every second for hours; the journal
should show the first one at once and then one line per interval with how many were
left out. The clock is the caller's (`now`, monotonic seconds), so tests need no sleeps.
"""

from __future__ import annotations

import logging


class RateLimitedLog:
    """Logs at most one warning per `interval` seconds; counts the ones it drops."""

    def __init__(self, logger: logging.Logger, interval: float = 60.0) -> None:
        self.logger = logger
        self.interval = interval
        self.suppressed = 0
        self._last = -float("inf")

    def warning(self, now: float, message: str, *args: object) -> bool:
        """Log `message % args` unless one was logged less than `interval` ago; True if
        it was logged."""
        if now - self._last < self.interval:
            self.suppressed += 1
            return False
        if self.suppressed:
            message += " (%d similar messages in the last %.0f s not shown)"
            args = (*args, self.suppressed, now - self._last)
        self.logger.warning(message, *args)
        self._last = now
        self.suppressed = 0
        return True
