"""systemd notifications (sd_notify): READY, STATUS, WATCHDOG and STOPPING.

A few lines instead of a dependency: one datagram to `$NOTIFY_SOCKET` (a leading `@`
is an abstract socket). Without `NOTIFY_SOCKET` (not under systemd) it does nothing.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    """Sends state lines to systemd when the daemon runs as a `Type=notify` service."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        watchdog_for_us = usec is not None and (pid is None or pid == str(os.getpid()))
        self.watchdog_interval = int(usec) / 2e6 if watchdog_for_us and usec else None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, *lines: str) -> bool:
        """Send `KEY=VALUE` lines; returns False when not under systemd or on error."""
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(lines).encode(), self._address)
        except OSError:
            return False
        return True
