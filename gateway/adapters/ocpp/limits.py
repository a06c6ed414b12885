"""Writing a charger's limit over OCPP: fail-safe first, purposes in order, read-back.

`LimitWriter` keeps what was asked for and what was accepted, and writes a limit
through whichever session is current (either OCPP version; the session turns a
`LimitProfile` into its own SetChargingProfile). For each purpose, last good first:
1. the fail-safe at stack level 0 (once per connection and purpose);
2. the limit at stack level 1, valid for `limit_validity` (see `profiles`);
3. where the fail-safe or stack level 1 is refused: the limit at stack level 0
   without an end, logged once as "no fail-safe";
then the next purpose. Refusals of every purpose raise ChargerProtocolError; no
answer raises ChargerUnreachable. One lock serialises writes, so the resync, the
refresh and the daemon's writes never interleave their profiles.

`offered_mismatch` checks the limit against the `Current.Offered` a charge point
reports: some firmwares accept a profile and keep offering more.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.adapters.base import ChargerProtocolError
from gateway.adapters.ocpp.clock import Clock, wall_datetime
from gateway.adapters.ocpp.profiles import (
    LimitProfile,
    ProfilePurpose,
    ProfileRole,
    build_profile,
    round_limit,
)
from gateway.adapters.ocpp.session import SessionBase

LOG = logging.getLogger(__name__)

OFFERED_TOLERANCE = 0.5
"""A (per phase) a charge point may offer above the limit before it is a mismatch."""


def offered_mismatch(
    offered: float, limit: float | None, since: float | None, now: float, grace: float
) -> str | None:
    """A description when the offered current exceeds the limit, else None.

    No verdict within `grace` seconds of the limit being accepted: the charge point
    may not have applied it yet, and its sample may predate it. Offering less than
    the limit is normal (the cable, the EV or another profile may cap it).
    """
    if limit is None or since is None or now - since < grace:
        return None
    if offered > limit + OFFERED_TOLERANCE:
        return (
            f"the charge point offers {offered:g} A although the limit of {limit:g} A "
            "was accepted; it does not apply its charging profile"
        )
    return None


class LimitWriter:
    """The limit of one charger: requested, accepted, and how to write it."""

    def __init__(
        self,
        label: str,
        connector_id: int,
        number_phases: int,
        max_current: float,
        safe_current: float,
        validity: float,
        clock: Clock,
    ) -> None:
        self._label = label
        self._connector_id = connector_id
        self._number_phases = number_phases
        self._max_current = max_current
        self._safe_current = round_limit(safe_current, max_current)
        self._validity = validity
        self._clock = clock
        self._purposes = [ProfilePurpose.TX_DEFAULT, ProfilePurpose.STATION_MAX]
        self._lock = asyncio.Lock()
        self._warned_no_failsafe = False
        self.requested: float | None = None
        """The last limit asked for; written again on every (re)connect and refresh."""
        self.accepted: float | None = None
        """The last limit a charge point accepted."""
        self.accepted_at: float | None = None
        """Monotonic time of that acceptance."""

    def request(self, amps: float) -> float:
        """Remember a new limit (rounded as it will be written) and return it."""
        self.requested = round_limit(amps, self._max_current)
        return self.requested

    async def install_failsafe(self, session: SessionBase) -> None:
        """Install the fail-safe of the preferred purpose (a resync step)."""
        async with self._lock:
            if not await self._ensure_failsafe(session, self._purposes[0]):
                raise ChargerProtocolError(
                    f"{self._label}: the fail-safe profile ({self._safe_current:g} A) was refused"
                )

    async def write(self, session: SessionBase, limit: float) -> None:
        """Write `limit` (already rounded); see the module docstring for the order."""
        async with self._lock:
            refusals: list[str] = []
            for purpose in list(self._purposes):
                refusal = await self._write_purpose(session, purpose, limit)
                if refusal is None:
                    self.accepted = limit
                    self.accepted_at = self._clock.now()
                    if self._purposes[0] is not purpose:
                        LOG.info("%s: limits go out as %s from now on", self._label, purpose)
                        self._purposes.remove(purpose)
                        self._purposes.insert(0, purpose)
                    return
                refusals.append(refusal)
        raise ChargerProtocolError(
            f"{self._label} refused a limit of {limit:g} A: " + "; ".join(refusals)
        )

    async def _write_purpose(
        self, session: SessionBase, purpose: ProfilePurpose, limit: float
    ) -> str | None:
        """None when a profile of this purpose carries the limit now, else why not."""
        refusals: list[str] = []
        if await self._ensure_failsafe(session, purpose):
            answer = await self._send(session, self._profile(purpose, ProfileRole.LIMIT, limit))
            if answer is None:
                return None
            refusals.append(answer)
            session.limit_state[("failsafe", purpose)] = False  # stack level 1 is refused
        answer = await self._send(
            session, self._profile(purpose, ProfileRole.UNBOUNDED_LIMIT, limit)
        )
        if answer is None:
            # The unbounded limit took the fail-safe's slot; never overwrite it with 0.
            session.limit_state[("failsafe", purpose)] = False
            if not self._warned_no_failsafe:
                self._warned_no_failsafe = True
                LOG.warning(
                    "%s takes no bounded limit over a fail-safe; limits stay in force "
                    "without end, also if the gateway stops",
                    self._label,
                )
            return None
        refusals.append(answer)
        return "; ".join(refusals)

    async def _ensure_failsafe(self, session: SessionBase, purpose: ProfilePurpose) -> bool:
        """True once the fail-safe of `purpose` is installed on this connection."""
        key = ("failsafe", purpose)
        if key not in session.limit_state:
            profile = self._profile(purpose, ProfileRole.FAILSAFE, self._safe_current)
            answer = await self._send(session, profile)
            session.limit_state[key] = answer is None
            if answer is not None:
                LOG.info("%s: %s", self._label, answer)
        return bool(session.limit_state[key])

    def _profile(self, purpose: ProfilePurpose, role: ProfileRole, limit: float) -> LimitProfile:
        return build_profile(
            purpose,
            role,
            self._connector_id,
            limit,
            self._number_phases,
            wall_datetime(self._clock),
            self._validity,
        )

    async def _send(self, session: SessionBase, profile: LimitProfile) -> str | None:
        """None when accepted, else the refusal as text; no answer still raises."""
        where = f"{profile.purpose} {profile.role} on connector {profile.connector_id}"
        try:
            status = await session.send_profile(profile)
        except ChargerProtocolError as exc:
            return f"{where}: {exc}"
        return None if status == "Accepted" else f"{where}: {status}"
