"""The limit a charger is sent for a requested current: paused, clamped, rounded down."""

from __future__ import annotations

import math

_EPSILON = 1e-9  # absorbs binary float error when dividing by a decimal step


def quantize_current(amps: float, max_current: float, min_current: float, step: float) -> float:
    """The limit to write for a requested per-phase current.

    Below `min_current` (IEC 61851: 6 A) means pause, written as 0 rather than a value a
    charger would refuse or misread. Otherwise clamp to `max_current` and round DOWN to
    the charger's `step`, so the written limit never exceeds the request. A result that
    falls below `min_current` after clamping is also 0.
    """
    if not math.isfinite(amps) or amps < 0:
        raise ValueError(f"a current limit must be a finite number >= 0, got {amps}")
    if amps < min_current:
        return 0.0
    steps = math.floor(min(amps, max_current) / step + _EPSILON)
    value = round(steps * step, 6)
    return value if value >= min_current else 0.0
