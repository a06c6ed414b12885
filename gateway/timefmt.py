"""Timestamps of the MQTT interface: RFC 3339, UTC, milliseconds, `Z` suffix."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(epoch_seconds: float) -> str:
    """`1764363600.25` -> `2025-11-28T21:00:00.250Z`."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
