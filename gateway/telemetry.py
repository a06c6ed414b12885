"""What the gateway publishes at every resampling tick, built from the chargers' samples.

Pure with respect to I/O: these functions turn the latest samples into (topic,
payload) pairs; the daemon publishes them. Times come in on the monotonic clock and
leave as wall-clock labels: `wall_offset` is wall time minus monotonic time now.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from gateway.core.formulas import PoolMember, PoolSnapshot, pool_snapshot
from gateway.core.model import ChargerSample
from gateway.core.status import ChargerStatus
from gateway.mqtt import payloads
from gateway.mqtt.topics import Topics


@dataclass(frozen=True, slots=True)
class PoolLayout:
    """A pool's name and its members' wiring."""

    name: str
    members: tuple[PoolMember, ...]

    @property
    def charger_ids(self) -> list[str]:
        return [m.charger_id for m in self.members]


def pool_messages(
    topics: Topics, pool: PoolLayout, snapshot: PoolSnapshot, wall_offset: float = 0.0
) -> Iterator[tuple[str, str]]:
    """The pool's periodic telemetry: power and current per grid phase."""
    snapshot = dataclasses.replace(snapshot, timestamp=snapshot.timestamp + wall_offset)
    yield topics.pool(pool.name, "power"), payloads.dumps(payloads.pool_power(snapshot))
    yield (
        topics.pool(pool.name, "current_per_phase"),
        payloads.dumps(payloads.pool_current(snapshot)),
    )


def charger_message(
    topics: Topics,
    charger_id: str,
    phases: tuple[int, ...],
    status: ChargerStatus,
    sample: ChargerSample | None,
    error: str | None,
    now: float,
    wall_offset: float = 0.0,
    ev_resume: str = "ok",
) -> tuple[str, str]:
    """One charger's state message; `error` is the last read error, if any, and
    `ev_resume` whether its EV took power after its last start (ok/waking/stalled)."""
    if sample is not None:
        sample = dataclasses.replace(sample, timestamp=sample.timestamp + wall_offset)
    body = payloads.charger_state(status, sample, phases, now + wall_offset)
    body["error"] = error
    body["ev_resume"] = ev_resume
    return topics.charger_state(charger_id), payloads.dumps(body)


def snapshots(
    pools: list[PoolLayout],
    latest: Mapping[str, ChargerSample],
    now: float,
    max_data_age: float,
) -> dict[str, PoolSnapshot]:
    """Every pool's snapshot at this tick."""
    return {p.name: pool_snapshot(p.members, latest, now, max_data_age) for p in pools}
