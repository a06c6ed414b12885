"""Enough file descriptors for a large site.

Every Modbus TCP charger holds a socket, as does every OCPP charge point; a site of
a few thousand chargers needs more than the 1,024 descriptors a process gets by default
(systemd's default soft limit too). At start the daemon raises its soft limit towards
the hard one when the config needs it; when even the hard limit is too low it says so
once, naming the setting that fixes it, and carries on (chargers beyond the limit fail
to connect and are retried like any unreachable charger).
"""

from __future__ import annotations

import logging
import resource

log = logging.getLogger(__name__)

SPARE = 256
"""Descriptors kept for everything else: MQTT, OCPP's listener, serial lines, files."""


def needed(chargers: int, meters: int = 0) -> int:
    """Descriptors a site of `chargers` and `meters` may hold open at once."""
    return chargers + meters + SPARE


def ensure_open_files(want: int) -> int:
    """Raise the soft RLIMIT_NOFILE to at least `want` where the hard limit allows;
    the soft limit now. Never lowers it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return soft
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft < want:
        log.warning(
            "open files limited to %d, the site may need %d: raise LimitNOFILE in the "
            "systemd unit (or ulimit -n)",
            soft,
            want,
        )
    return soft
