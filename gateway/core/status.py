"""Charger status (working / not_working / uncertain) by the SDK's rules, plus our fix.

Pure code, clock passed in. Rules (frequenz-sdk `EVChargerStatusTracker`):
- stale or missing data (older than `max_data_age`) -> not_working;
- an EV plugged or locked with the charger ready or charging -> working;
- anything else -> not_working.
A failed write blocks the charger: while blocked, anything but not_working is reported
as uncertain. The block lasts 1 s at first and doubles (up to 30 s) when a write fails
again after the previous block ended. Unlike the SDK (which never resets the doubling),
a successful write ends the block and resets the duration to 1 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.core.formulas import is_fresh
from gateway.core.model import ChargerSample


class ChargerStatus(StrEnum):
    """How far a charger can be trusted with power right now."""

    WORKING = "working"
    NOT_WORKING = "not_working"
    UNCERTAIN = "uncertain"


@dataclass(slots=True)
class _Block:
    until: float = 0.0
    duration: float = 0.0


class StatusTracker:
    """Decides each charger's status from its latest sample and its write results."""

    def __init__(
        self, max_data_age: float, min_blocking: float = 1.0, max_blocking: float = 30.0
    ) -> None:
        self._max_data_age = max_data_age
        self._min_blocking = min_blocking
        self._max_blocking = max_blocking
        self._blocks: dict[str, _Block] = {}

    def status(self, charger_id: str, sample: ChargerSample | None, now: float) -> ChargerStatus:
        """The charger's status at `now`."""
        if sample is None or not is_fresh(sample, now, self._max_data_age) or not sample.usable:
            return ChargerStatus.NOT_WORKING
        if self.blocked_until(charger_id) > now:
            return ChargerStatus.UNCERTAIN
        return ChargerStatus.WORKING

    def blocked_until(self, charger_id: str) -> float:
        """When the charger's current block ends (0 when it was never blocked)."""
        block = self._blocks.get(charger_id)
        return block.until if block else 0.0

    def write_failed(self, charger_id: str, now: float) -> float:
        """Record a failed write; returns the time the block ends."""
        block = self._blocks.setdefault(charger_id, _Block())
        if block.until > now:
            return block.until  # a failure while blocked does not extend the block
        if block.duration == 0.0:
            block.duration = self._min_blocking
        else:
            block.duration = min(block.duration * 2, self._max_blocking)
        block.until = now + block.duration
        return block.until

    def write_succeeded(self, charger_id: str) -> None:
        """Record a successful write: the block ends and the doubling starts over."""
        self._blocks.pop(charger_id, None)
