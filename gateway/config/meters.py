"""`[[meters]]` and a pool's `grid`: the grid meter at the main fuse (see docs/meters.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from gateway.config.base import (
    METER_PROFILES_DIR,
    Name,
    SerialConfig,
    _Section,
)


class MeterConfig(_Section):
    """A grid meter: Modbus (a meter profile, TCP or RTU) or an MQTT topic."""

    id: Name
    adapter: Literal["modbus", "mqtt"]
    profile: str | None = None
    host: str | None = None
    port: int = Field(502, ge=1, le=65535)
    unit_id: int | None = Field(None, ge=0, le=255)
    serial: SerialConfig | None = None
    poll_interval: float = Field(1.0, gt=0, le=3600)
    timeout: float = Field(1.0, gt=0, le=60)
    topic: str | None = Field(None, min_length=1, max_length=1024)
    max_age: float = Field(5.0, gt=0, le=3600)  # s; older readings: the pool falls back
    phases: list[int] = Field(default_factory=lambda: [1, 2, 3], min_length=3, max_length=3)

    @field_validator("phases")
    @classmethod
    def _three_grid_phases(cls, phases: list[int]) -> list[int]:
        if sorted(phases) != [1, 2, 3]:
            raise ValueError(f"must list the grid phases 1, 2, 3 once each, got {phases}")
        return phases

    @field_validator("topic")
    @classmethod
    def _one_topic(cls, topic: str | None) -> str | None:
        if topic is not None and (set(topic) & {"+", "#", "\0"} or topic.startswith("$")):
            raise ValueError(f"{topic!r} must be one topic: no wildcards (+ #), no leading $")
        return topic

    @model_validator(mode="after")
    def _adapter_needs(self) -> MeterConfig:
        if self.adapter == "modbus":
            if self.profile is None:
                known = ", ".join(_meter_profiles())
                raise ValueError(f'adapter "modbus" needs a profile (one of: {known})')
            if self.host is None and self.serial is None:
                raise ValueError('adapter "modbus" needs host (TCP) or serial (RTU)')
            if self.host is not None and self.serial is not None:
                raise ValueError("give host (TCP) or serial (RTU), not both")
            if self.topic is not None:
                raise ValueError('topic is for adapter "mqtt"; a modbus meter is polled')
            if not (METER_PROFILES_DIR / f"{self.profile}.toml").is_file():
                known = ", ".join(_meter_profiles())
                raise ValueError(f"unknown meter profile {self.profile!r}; known: {known}")
            if self.max_age <= self.poll_interval:
                raise ValueError(
                    f"max_age {self.max_age:g} s must be longer than poll_interval "
                    f"{self.poll_interval:g} s, or every reading is stale"
                )
        else:
            if self.topic is None:
                raise ValueError('adapter "mqtt" needs the topic the meter publishes on')
            given = [k for k in _MODBUS_ONLY if k in self.model_fields_set]
            if given:
                raise ValueError(f'{", ".join(given)}: only for adapter "modbus"')
        return self


_MODBUS_ONLY = ("profile", "host", "port", "unit_id", "serial", "poll_interval", "timeout")
"""Meter keys that mean nothing to an MQTT meter: giving one is a mistake to point out."""


def _meter_profiles() -> list[str]:
    return sorted(p.stem for p in METER_PROFILES_DIR.glob("*.toml"))


class GridConfig(_Section):
    """A pool's grid connection: the meter at the main fuse and what to keep clear of it.

    `fuse` and `margin` in A per phase; `fallback_current` the A per phase for all the
    pool's EVs together while the meter is stale (default: one EV at its minimum current
    when `fuse - margin` allows it, else 0).
    """

    meter: Name
    fuse: float = Field(gt=0, le=4000)
    margin: float = Field(1.0, ge=0, le=4000)
    fallback_current: float | None = Field(None, ge=0, le=4000)

    @model_validator(mode="after")
    def _room_left(self) -> GridConfig:
        if self.margin >= self.fuse:
            raise ValueError(
                f"fuse {self.fuse:g} A must be above margin {self.margin:g} A, "
                "or the EVs never get any current"
            )
        if self.fallback_current is not None and self.fallback_current > self.fuse - self.margin:
            raise ValueError(
                f"fallback_current {self.fallback_current:g} A is above fuse - margin "
                f"({self.fuse - self.margin:g} A)"
            )
        return self


