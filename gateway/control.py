"""One pool's control loop: proposals -> power manager -> distributor -> charger writes.

The MQTT handler only validates, updates the power manager and replies; the writes run
on the controller's own task, woken at once (so a proposal reaches the chargers within
milliseconds) and at every resampling tick (so the distributor's dynamics, retries of
failed writes and proposal expiry keep going without new input).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import aiomqtt

from gateway.adapters.base import Charger, ChargerError
from gateway.config import GatewayConfig, PoolConfig
from gateway.core.model import ChargerSample, SystemBounds
from gateway.core.power_manager import PowerManager, Proposal
from gateway.core.status import ChargerStatus, StatusTracker
from gateway.core.system_bounds import NO_POWER, system_bounds
from gateway.distribution_bridge import DistributionInput, PoolDistributor
from gateway.mqtt import payloads
from gateway.mqtt.bridge import MqttBridge
from gateway.mqtt.topics import Topics
from gateway.proposals import (
    ProposalError,
    error_reply,
    ok_reply,
    parse_proposal,
    reply_target,
)
from gateway.results import DistributionResult, WriteOutcome, build_result
from gateway.telemetry import PoolLayout
from gateway.timefmt import rfc3339

log = logging.getLogger(__name__)


class PoolController:
    """Resolves one pool's proposals and drives its chargers."""

    def __init__(
        self,
        layout: PoolLayout,
        pool_config: PoolConfig,
        gateway_config: GatewayConfig,
        chargers: Mapping[str, Charger],
        latest: Callable[[], dict[str, ChargerSample]],
        status: StatusTracker,
        bridge: MqttBridge,
        topics: Topics,
        clock: Callable[[], float],
    ) -> None:
        self.name = layout.name
        self.layout = layout
        self.pool_config = pool_config
        self.config = gateway_config
        self.chargers = chargers
        self.latest = latest
        self.status = status
        self.bridge = bridge
        self.topics = topics
        self.clock = clock
        self.manager = PowerManager(
            max_proposal_age=gateway_config.power.max_proposal_age,
            default_power=pool_config.default_power,
        )
        self.distributor = PoolDistributor(gateway_config, layout.charger_ids)
        self.bounds: SystemBounds | None = None
        self.commanded: dict[str, float] = {}
        self.last_result: DistributionResult | None = None
        self._published_status: dict[str, dict[str, Any]] = {}
        self._wake = asyncio.Event()
        self._announce = False
        self.distributions = 0

    # ------------------------------------------------------------------ inputs
    async def on_connect(self) -> None:
        """Nothing to send: retained state is republished by the bridge itself."""

    async def on_tick(self, now: float) -> None:
        """Refresh the system bounds, drop expired proposals, run a distribution."""
        bounds = self._system_bounds(now)
        if bounds != self.bounds:
            self.bounds = bounds
            self.manager.set_system_bounds(bounds, now)
            await self.bridge.publish(
                self.topics.pool(self.name, "system_power_bounds"),
                payloads.dumps(payloads.system_bounds(bounds, now)),
                qos=1,
                retain=True,
            )
            self._announce = True
        self._drop_expired(now)
        await self.publish_status(now)
        self._wake.set()

    def _drop_expired(self, now: float) -> None:
        dropped = self.manager.drop_expired(now)
        if dropped:
            log.info("pool %s: proposals expired: %s", self.name, ", ".join(dropped))
            self._announce = True

    async def on_proposal_message(self, message: aiomqtt.Message) -> None:
        """Validate, apply and answer one proposal; a rejected one changes nothing."""
        now = self.clock()
        reply_topic, properties = reply_target(
            message, self.topics.propose_power_response(self.name)
        )
        payload = message.payload if isinstance(message.payload, bytes) else b""
        try:
            request = parse_proposal(
                payload,
                retained=message.retain,
                max_expires_in=self.config.power.max_expires_in,
            )
        except ProposalError as exc:
            log.info("pool %s: proposal refused: %s", self.name, exc)
            body = error_reply(exc.source, str(exc), exc.transaction)
        else:
            self.manager.propose(
                Proposal(
                    request.source,
                    request.priority,
                    request.power,
                    request.bounds,
                    now,
                    request.expiry(now),
                ),
                now,
            )
            body = ok_reply(request.source, request.transaction)
            self._announce = True
            self._wake.set()
        await self.bridge.publish(reply_topic, payloads.dumps(body), qos=1, properties=properties)
        await self.publish_status(now)

    # ------------------------------------------------------------------ loop
    async def run(self) -> None:
        """Distribute whenever woken, or when a proposal expires; never ends by itself."""
        while True:
            expiry = self.manager.next_expiry()
            if expiry is None:
                await self._wake.wait()
            else:
                # Dropped strictly after its age: wake a moment after the expiry time.
                delay = max(0.0, expiry - self.clock()) + 0.001
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            try:
                now = self.clock()
                self._drop_expired(now)
                await self.distribute(now)
            except Exception:  # a bug must not stop control; the next tick tries again
                log.exception("pool %s: distribution failed", self.name)

    async def distribute(self, now: float) -> DistributionResult | None:
        """Run the distributor and write every changed limit; publish what happened."""
        target = self.manager.target
        inputs = self._distribution_inputs(now)
        allocation = self.distributor.allocate(target, inputs, self.pool_config.phase_limit, now)
        pending = {
            cid: limit
            for cid, limit in allocation.limits.items()
            if self.commanded.get(cid) != limit
        }
        if not pending and not self._announce:
            return None
        outcomes = await self._write(pending, now)
        self.distributions += 1
        result = build_result(
            now=now,
            target=target,
            component_ids=self.layout.charger_ids,
            allocation=allocation,
            outcomes=outcomes,
        )
        self.last_result = result
        self._announce = False
        await self.bridge.publish(
            self.topics.pool(self.name, "power_distribution_results"),
            payloads.dumps(result.payload()),
        )
        await self.publish_status(now)
        return result

    async def _write(self, pending: Mapping[str, float], now: float) -> dict[str, WriteOutcome]:
        """Write limits: every cut first, then the raises, so the fuse never sees both.

        Within each group the writes run concurrently, so one slow charger delays
        nobody else's write (each has its own timeout).
        """
        cuts = [cid for cid, amps in pending.items() if amps < self.commanded.get(cid, math.inf)]
        raises = [cid for cid in pending if cid not in cuts]
        outcomes: dict[str, WriteOutcome] = {}
        for group in (cuts, raises):
            results = await asyncio.gather(*(self._write_one(cid, pending[cid]) for cid in group))
            for cid, outcome in zip(group, results, strict=True):
                outcomes[cid] = outcome
                self._record(cid, pending[cid], outcome, now)
        return outcomes

    def _record(self, charger_id: str, amps: float, outcome: WriteOutcome, now: float) -> None:
        if outcome.ok:
            self.commanded[charger_id] = amps
            self.status.write_succeeded(charger_id)
            return
        self.commanded.pop(charger_id, None)  # unknown state: write again next time
        until = self.status.write_failed(charger_id, now)
        log.warning(
            "pool %s: charger %s refused %.1f A (%s); uncertain until %s",
            self.name,
            charger_id,
            amps,
            outcome.error,
            rfc3339(until),
        )

    async def _write_one(self, charger_id: str, amps: float) -> WriteOutcome:
        charger = self.config.charger(charger_id)
        # An OCPP write is a CALL answered within the central system's own timeout.
        timeout = (
            self.config.ocpp.response_timeout + 1.0
            if charger.adapter == "ocpp"
            else charger.timeout
        )
        try:
            written = await asyncio.wait_for(
                self.chargers[charger_id].set_current_limit(amps), timeout
            )
        except TimeoutError:
            return WriteOutcome(False, amps, f"no answer within {timeout:g} s")
        except ChargerError as exc:
            return WriteOutcome(False, amps, str(exc))
        except Exception as exc:  # adapter bug: report it like a failed write
            log.exception("charger %s: unexpected error while writing", charger_id)
            return WriteOutcome(False, amps, f"internal error: {exc!r}")
        return WriteOutcome(True, written, None)

    # ------------------------------------------------------------------ reports
    async def publish_status(self, now: float) -> None:
        """Publish each source's power_status when it changed; clear withdrawn ones."""
        current: dict[str, dict[str, Any]] = {}
        for source in self.manager.sources():
            report = self.manager.report(source)
            if report is None:
                continue
            current[source] = {
                "source": source,
                "priority": report.priority,
                "target_power": report.target_power,
                "bounds": payloads.bounds_payload(report.bounds),
                "distribution_result": self.last_result.payload() if self.last_result else None,
            }
        for source, body in current.items():
            if self._published_status.get(source) == body:
                continue
            self._published_status[source] = body
            await self.bridge.publish(
                self.topics.power_status(self.name, source),
                payloads.dumps({"timestamp": rfc3339(now), **body}),
                qos=1,
                retain=True,
            )
        for source in [s for s in self._published_status if s not in current]:
            del self._published_status[source]
            await self.bridge.clear_retained(self.topics.power_status(self.name, source))

    # ------------------------------------------------------------------ helpers
    def _statuses(self, now: float) -> dict[str, ChargerStatus]:
        latest = self.latest()
        return {
            cid: self.status.status(cid, latest.get(cid), now) for cid in self.layout.charger_ids
        }

    def _system_bounds(self, now: float) -> SystemBounds:
        latest = self.latest()
        working = [
            (latest[cid], len(self.config.charger(cid).phases))
            for cid, status in self._statuses(now).items()
            if status == ChargerStatus.WORKING
        ]
        if not working:
            return NO_POWER
        return system_bounds(
            working, self.config.distribution.min_current, self.config.distribution.nominal_voltage
        )

    def _distribution_inputs(self, now: float) -> list[DistributionInput]:
        latest = self.latest()
        statuses = self._statuses(now)
        return [
            DistributionInput(
                charger=self.config.charger(cid),
                sample=latest.get(cid),
                status=statuses[cid],
                commanded=self.commanded.get(cid),
            )
            for cid in self.layout.charger_ids
        ]
