"""Logs that stay readable under abuse: a repeated warning becomes one line with a count.

A client that sends the same bad message ten thousand times a second must not turn
the log into ten thousand lines. `LogLimiter` lets the first line of a kind through,
then swallows repeats of the same kind for `interval` seconds and counts them; the
next line of that kind after the interval carries the count, e.g.

    pool default: proposal refused: power must be ... (and 4211 more like it in 10 s)

A "kind" is a key the caller chooses (typically the format string, or the format
string plus the one argument that should stay distinct, such as a charger id).
Whatever is swallowed is counted in `suppressed` and reported by `flush()`, so a
burst that ends is still accounted for in the log. The clock is injectable so tests
never wait on real time.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass

DEFAULT_INTERVAL = 10.0
MAX_KINDS = 1024
"""Kinds remembered at most; the oldest is forgotten first (input cannot grow memory)."""


@dataclass(slots=True)
class _Kind:
    last_logged: float
    repeats: int = 0
    level: int = logging.WARNING
    message: str = ""


class LogLimiter:
    """Rate-limits log lines per kind: one line per `interval` seconds, with a count."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._kinds: dict[Hashable, _Kind] = {}
        self.suppressed = 0
        _LIMITERS.add(self)

    def log(self, level: int, key: Hashable, message: str, *args: object) -> bool:
        """Log `message % args` unless a line of kind `key` went out within `interval`.

        Returns True when a line was written. A swallowed line is counted and its
        text kept, so `flush()` can name the last one.
        """
        now = self.clock()
        kind = self._kinds.get(key)
        if kind is not None and now - kind.last_logged < self.interval:
            kind.repeats += 1
            kind.level = level
            kind.message = message % args if args else message
            self.suppressed += 1
            return False
        text = message % args if args else message
        if kind is not None and kind.repeats:
            text = f"{text} (and {kind.repeats} more like it in {now - kind.last_logged:.0f} s)"
        self._remember(key, _Kind(now))
        self.logger.log(level, "%s", text)
        return True

    def warning(self, key: Hashable, message: str, *args: object) -> bool:
        """`log` at WARNING."""
        return self.log(logging.WARNING, key, message, *args)

    def info(self, key: Hashable, message: str, *args: object) -> bool:
        """`log` at INFO."""
        return self.log(logging.INFO, key, message, *args)

    def flush(self) -> int:
        """Write one line per kind with swallowed repeats whose interval has passed.

        Call it now and then (e.g. every tick) so the count of a burst that stopped is
        not lost; returns the number of lines written.
        """
        now = self.clock()
        written = 0
        for kind in self._kinds.values():
            if kind.repeats and now - kind.last_logged >= self.interval:
                self.logger.log(
                    kind.level,
                    "%s (repeated %d times in %.0f s)",
                    kind.message,
                    kind.repeats,
                    now - kind.last_logged,
                )
                kind.repeats = 0
                kind.last_logged = now
                written += 1
        return written

    def _remember(self, key: Hashable, kind: _Kind) -> None:
        self._kinds.pop(key, None)
        self._kinds[key] = kind
        while len(self._kinds) > MAX_KINDS:
            del self._kinds[next(iter(self._kinds))]


_LIMITERS: weakref.WeakSet[LogLimiter] = weakref.WeakSet()


def flush_all() -> int:
    """`flush()` every live limiter; the MQTT bridge calls it every few seconds."""
    return sum(limiter.flush() for limiter in list(_LIMITERS))
