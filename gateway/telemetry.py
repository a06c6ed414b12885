"""What the gateway publishes at every resampling tick, built from the chargers' samples.

Pure with respect to I/O: these functions turn the latest samples into (topic,
payload) pairs; the daemon publishes them. Times come in on the monotonic clock and
leave as wall-clock labels: `wall_offset` is wall time minus monotonic time now.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

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
    phases_in_use: int | None = None,
) -> tuple[str, str]:
    """One charger's state message; `error` is the last read error, if any,
    `ev_resume` whether its EV took power after its last start (ok/waking/stalled),
    and `phases_in_use` its phase setting (1 after a switch to one phase)."""
    body = payloads.charger_state(status, sample, phases, now + wall_offset, wall_offset)
    body["error"] = error
    body["ev_resume"] = ev_resume
    body["phases_in_use"] = phases_in_use if phases_in_use is not None else len(phases)
    return topics.charger_state(charger_id), payloads.dumps(body)


DEADBANDS = (50.0, 0.2, 0.2, 0.2, 2.0, 2.0, 2.0, 100.0)
"""How far a measured value may move before its charger's state goes out at once (with
`state_heartbeat` set): active power 50 W, current 0.2 A and voltage 2 V per terminal,
energy 100 Wh. Published values are never further than this from the charger's."""


@dataclass(frozen=True, slots=True)
class StateKey:
    """What decides whether a charger's state is worth publishing now.

    `discrete`: status, cable and component state, limit, bounds, error and EV resume
    state (any change counts); `measures`: power, currents, voltages and energy (a
    change counts when it exceeds its `DEADBANDS` entry).
    """

    discrete: tuple[object, ...]
    measures: tuple[float, ...] = ()

    def differs(self, published: StateKey) -> bool:
        """True when this state is worth publishing after `published` went out."""
        if self.measures == published.measures:  # the common case, compared in C
            return self.discrete != published.discrete
        if self.discrete != published.discrete or len(self.measures) != len(published.measures):
            return True
        for now, then, band in zip(self.measures, published.measures, DEADBANDS, strict=False):
            if now == then or abs(now - then) < band or (now != now and then != then):
                continue  # unchanged, within the band, or unknown both times (NaN)
            return True
        return False


def state_key(
    status: ChargerStatus, sample: ChargerSample | None, error: str | None, ev_resume: str = "ok"
) -> StateKey:
    """The charger's `StateKey` now."""
    if sample is None:
        return StateKey((status, error, ev_resume))
    discrete = (
        status,
        sample.cable_state,
        sample.component_state,
        sample.current_limit,
        sample.inclusion_bounds,
        error,
        ev_resume,
    )
    energy = math.nan if sample.energy is None else sample.energy
    return StateKey(
        discrete,
        (sample.active_power, *sample.current.as_tuple(), *sample.voltage.as_tuple(), energy),
    )


@dataclass(slots=True)
class StateSchedule:
    """Which chargers' states to publish at a tick.

    With `heartbeat` 0, every charger at every tick. Otherwise a charger's state is
    published when its `state_key` differs from the one last published (a measured
    value by more than its deadband), and at least every `heartbeat` seconds;
    the first heartbeats are spread over one interval, so a large site does not
    publish every state in the same tick.
    """

    heartbeat: float
    _sent: dict[str, tuple[StateKey, float]] = field(default_factory=dict)

    def due(self, charger_id: str, key: StateKey, now: float, spread: float) -> bool:
        """True when the state is to be published now, and records it. `spread` in
        (0, 1] places the charger's first heartbeat within the first interval; a change
        is published at once without moving the heartbeat's schedule."""
        if self.heartbeat <= 0:
            return True
        sent = self._sent.get(charger_id)
        if sent is None:
            self._sent[charger_id] = (key, now + self.heartbeat * spread)
            return True
        previous, next_due = sent
        if now >= next_due:
            next_due += self.heartbeat
            if next_due <= now:  # beats were missed (a stalled loop): count from now
                next_due = now + self.heartbeat
        elif not key.differs(previous):
            return False
        self._sent[charger_id] = (key, next_due)
        return True


def snapshots(
    pools: list[PoolLayout],
    latest: Mapping[str, ChargerSample],
    now: float,
    max_data_age: float,
) -> dict[str, PoolSnapshot]:
    """Every pool's snapshot at this tick."""
    return {p.name: pool_snapshot(p.members, latest, now, max_data_age) for p in pools}
