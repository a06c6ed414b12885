"""Checks on every frame a charge point sends, before the `ocpp` library sees it.

The library parses a frame with `json.loads` and logs a traceback when it cannot, and
answers nothing; a deeply nested frame raises `RecursionError` and kills the
connection. Here each frame is checked first (pure code, no I/O):
- Nesting deeper than `MAX_DEPTH` is refused without parsing (no recursion at all).
- A frame that is not JSON, not an array, or not shaped like a CALL, CALLRESULT or
  CALLERROR gets the CALLERROR the OCPP-J spec prescribes. OCPP 1.6J has one code
  for a frame of the wrong shape, `FormationViolation` (the 1.6 spelling); OCPP
  2.0.1 answers `RpcFrameworkError`, or `MessageTypeNotSupported` for a message type
  it does not know. The message id is the frame's own when it can be read, else
  "-1" (the id OCPP-J 2.0.1 uses for a message whose id cannot be read).
- A CALLRESULT or CALLERROR that does not answer the CALL the gateway awaits is
  dropped (the session compares `message_id`): the library would queue it for the
  next CALL, or skip it by recursing once per stray answer.

`RateLimiter` is a token bucket on the injected monotonic clock: a connection may
send `burst` frames at once and `rate` per second on average.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

MAX_DEPTH = 20
"""Deepest nesting of arrays/objects accepted; real OCPP messages stay below 10."""

UNREADABLE_ID = "-1"
MAX_ID_LENGTH = 36
"""OCPP message ids are at most 36 characters."""

CALL, CALLRESULT, CALLERROR = 2, 3, 4


class FrameKind(Enum):
    """What a frame turned out to be."""

    CALL = "call"
    RESPONSE = "response"
    BAD = "bad"


@dataclass(frozen=True, slots=True)
class FrameCheck:
    """The verdict on one frame; `reply` is the CALLERROR to send for a bad one."""

    kind: FrameKind
    problem: str | None = None
    reply: str | None = None
    message_id: str | None = None


def nesting_depth_exceeds(text: str, limit: int = MAX_DEPTH) -> bool:
    """True when arrays/objects in `text` nest deeper than `limit` (strings ignored)."""
    if text.count("[") + text.count("{") <= limit:
        return False  # cannot be deeper than the number of openers
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def check_frame(raw: str | bytes, version: str) -> FrameCheck:
    """Classify one frame; a bad one comes with the CALLERROR to answer it."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _bad(version, UNREADABLE_ID, "the frame is not UTF-8 text")
    if nesting_depth_exceeds(raw):
        return _bad(version, UNREADABLE_ID, f"the frame nests deeper than {MAX_DEPTH} levels")
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):
        return _bad(version, UNREADABLE_ID, "the frame is not JSON")
    if not isinstance(message, list) or not message:
        return _bad(version, UNREADABLE_ID, "the frame is not a non-empty JSON array")
    raw_id = message[1] if len(message) > 1 else None
    message_id = (
        raw_id if isinstance(raw_id, str) and 0 < len(raw_id) <= MAX_ID_LENGTH else UNREADABLE_ID
    )
    message_type = message[0]
    if message_type not in (CALL, CALLRESULT, CALLERROR) or isinstance(message_type, bool):
        return _bad(
            version, message_id, f"message type {message_type!r:.20} is unknown", unknown_type=True
        )
    if message_id == UNREADABLE_ID:
        return _bad(version, message_id, "the message id is missing or not a short string")
    shape_ok = (
        (message_type == CALL and len(message) == 4 and isinstance(message[2], str)
         and isinstance(message[3], dict))
        or (message_type == CALLRESULT and len(message) == 3 and isinstance(message[2], dict))
        or (message_type == CALLERROR and len(message) == 5 and isinstance(message[2], str))
    )  # fmt: skip
    if not shape_ok:
        return _bad(version, message_id, f"a message of type {message_type} has the wrong shape")
    if message_type == CALL:
        return FrameCheck(FrameKind.CALL, message_id=message_id)
    return FrameCheck(FrameKind.RESPONSE, message_id=message_id)


def _bad(version: str, message_id: str, problem: str, *, unknown_type: bool = False) -> FrameCheck:
    if version == "1.6":
        code = "FormationViolation"
    else:
        code = "MessageTypeNotSupported" if unknown_type else "RpcFrameworkError"
    reply = json.dumps([CALLERROR, message_id, code, problem, {}], separators=(",", ":"))
    return FrameCheck(FrameKind.BAD, problem, reply)


class RateLimiter:
    """A token bucket: `burst` frames at once, `rate` frames per second on average."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = now

    def allow(self, now: float) -> bool:
        """Take a token for one frame; False when the connection is over its rate."""
        elapsed = max(now - self._last, 0.0)
        self._last = now
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
