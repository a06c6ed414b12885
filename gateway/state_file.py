"""What the gateway remembers across restarts: a small JSON file, written atomically.

A watchdog restart, an upgrade or a power cut must not drop the pool's target: the
active proposals (with their absolute expiry) and the last limits decided are kept in
`state.json` in the state directory (`$STATE_DIRECTORY` under systemd). Expiry is
stored as wall-clock time, the only clock that spans a reboot; at start the remaining
age is computed from it and never made longer than it was.

Writes go to a temporary file in the same directory, are flushed to disk and renamed
over the old file, so a crash leaves either the old state or the new one. A file that
cannot be read, is not ours, or is of another version is set aside (renamed with a
`.bad-<time>` suffix) with one warning, and the gateway starts fresh: never fatal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT = "ev-gateway-state"
VERSION = 1
FILE_NAME = "state.json"


@dataclass(frozen=True, slots=True)
class SavedProposal:
    """One source's proposal as kept on disk; `expires_at` is Unix time, None: never."""

    source: str
    priority: int
    power: float | None
    lower: float | None
    upper: float | None
    expires_at: float | None


@dataclass(slots=True)
class PoolState:
    """What one pool keeps: its proposals and the limits last written to its chargers."""

    proposals: list[SavedProposal] = field(default_factory=list)
    limits: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class GatewayState:
    """Everything kept, per pool name."""

    pools: dict[str, PoolState] = field(default_factory=dict)

    def to_json(self, base_topic: str) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "base_topic": base_topic,
            "saved_at": time.time(),
            "pools": {
                name: {
                    "proposals": [asdict(p) for p in pool.proposals],
                    "limits": pool.limits,
                }
                for name, pool in self.pools.items()
            },
        }


class StateError(ValueError):
    """The file is not a state file of this gateway; the message says why."""


def parse_state(data: Any, base_topic: str) -> GatewayState:
    """Validate a decoded state file; raises `StateError` for anything unexpected."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise StateError("not an ev-gateway state file")
    if data.get("version") != VERSION:
        raise StateError(f"state version {data.get('version')!r}, this gateway reads {VERSION}")
    if data.get("base_topic") != base_topic:
        raise StateError(
            f"written for base topic {data.get('base_topic')!r}, this gateway is {base_topic!r}"
        )
    pools = data.get("pools")
    if not isinstance(pools, dict):
        raise StateError("'pools' is not an object")
    state = GatewayState()
    for name, body in pools.items():
        if not isinstance(body, dict):
            raise StateError(f"pool {name!r} is not an object")
        state.pools[str(name)] = PoolState(
            proposals=[_proposal(item) for item in _list(body.get("proposals", []))],
            limits={str(k): _number(v) for k, v in _dict(body.get("limits", {})).items()},
        )
    return state


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise StateError("expected a list")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StateError("expected an object")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise StateError(f"{value!r} is not a finite number")
    return float(value)


def _optional(value: Any) -> float | None:
    return None if value is None else _number(value)


def _proposal(item: Any) -> SavedProposal:
    body = _dict(item)
    source, priority = body.get("source"), body.get("priority")
    if not isinstance(source, str) or not isinstance(priority, int):
        raise StateError("a proposal needs a source (string) and a priority (integer)")
    return SavedProposal(
        source=source,
        priority=priority,
        power=_optional(body.get("power")),
        lower=_optional(body.get("lower")),
        upper=_optional(body.get("upper")),
        expires_at=_optional(body.get("expires_at")),
    )


class StateFile:
    """The state file in one directory; `path` None keeps nothing (and says so once)."""

    def __init__(self, directory: Path | None, base_topic: str) -> None:
        self.path = None if directory is None else directory / FILE_NAME
        self._base_topic = base_topic
        self._last: str | None = None

    def load(self) -> GatewayState:
        """The kept state, or an empty one (a bad file is set aside with one warning)."""
        if self.path is None:
            log.info("no state directory: proposals are not kept across restarts")
            return GatewayState()
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return GatewayState()
        except (OSError, UnicodeDecodeError) as exc:
            self._set_aside(f"cannot be read ({exc})")
            return GatewayState()
        try:
            state = parse_state(json.loads(text), self._base_topic)
        except (ValueError, RecursionError) as exc:
            self._set_aside(str(exc))
            return GatewayState()
        self._last = json.dumps({**json.loads(text), "saved_at": None}, sort_keys=True)
        return state

    def save(self, state: GatewayState) -> bool:
        """Write the state atomically when it changed; False (logged) when it failed."""
        if self.path is None:
            return False
        body = state.to_json(self._base_topic)
        comparable = json.dumps({**body, "saved_at": None}, sort_keys=True)
        if comparable == self._last:
            return True
        text = json.dumps(body, indent=1, sort_keys=True)
        directory = self.path.parent
        temporary: str | None = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".state-", dir=directory)
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            log.warning("cannot write the state file %s: %s", self.path, exc)
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
            return False
        self._last = comparable
        return True

    def _set_aside(self, reason: str) -> None:
        assert self.path is not None
        aside = self.path.with_name(f"{self.path.name}.bad-{int(time.time())}")
        try:
            os.replace(self.path, aside)
        except OSError as exc:
            log.warning("state file %s is unusable (%s) and cannot be moved: %s",
                        self.path, reason, exc)  # fmt: skip
            return
        log.warning("state file %s is unusable (%s): set aside as %s; starting fresh",
                    self.path, reason, aside.name)  # fmt: skip
