"""Exit statuses of `ev-gateway` and the error a user can fix, shown as one line.

The statuses follow sysexits(3) where one fits, so scripts and systemd can tell a bad
config (78, never worth a restart) from a port that is taken (69, maybe free after a
restart). README's "Exit statuses" table lists the same numbers.
"""

from __future__ import annotations

EX_OK = 0
EX_USAGE = 2  # bad command-line arguments (argparse's status)
EX_SOFTWARE = 70  # an internal error: a bug, reported in one line
EX_UNAVAILABLE = 69  # a port to listen on is taken or not available
EX_OSERR = 71  # the operating system refused something else (a file, a device)
EX_CONFIG = 78  # the configuration cannot be used (missing, unreadable, invalid)
EX_BROKEN_PIPE = 141  # the reader of our output went away (`| head`), as if by SIGPIPE


class UserError(Exception):
    """A problem the user can fix; the message is one line, `status` the exit status."""

    status = EX_SOFTWARE

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class PortUnavailable(UserError):
    """A server cannot listen on its address (in use, or not an address of this host)."""

    status = EX_UNAVAILABLE
