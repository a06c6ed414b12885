"""One pool's control loop: proposals -> power manager -> distributor -> charger writes.

The MQTT handler only validates, updates the power manager and replies; the writes run
on the controller's own task, woken at once (so a proposal reaches the chargers within
milliseconds) and at every resampling tick (so the distributor's dynamics, retries of
failed writes and proposal expiry keep going without new input).

Chargers are `ChargerRuntime`s: the controller asks them for their samples, statuses
and capabilities and writes through them; what it records and reports is what the
chargers actually accepted. Decisions run on the injected clock's monotonic time;
payload timestamps are wall-clock labels of those moments.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Mapping
from typing import Any

import aiomqtt

from gateway.chargers import ChargerRuntime
from gateway.chargers.phase_switch import PoolSwitches
from gateway.chargers.writes import write_limits
from gateway.clock import Clock, wall_at
from gateway.config import GatewayConfig, PoolConfig
from gateway.core.headroom import GridHeadroom, GridLimits
from gateway.core.model import SystemBounds
from gateway.core.power_manager import PowerManager, Proposal
from gateway.core.status import ChargerStatus
from gateway.core.system_bounds import NO_POWER, system_bounds
from gateway.distribution.model import PhaseLimit
from gateway.distribution_bridge import (
    PoolDistributor,
    Recheck,
    as_written,
    distribution_inputs,
)
from gateway.logsafe import LogLimiter
from gateway.meters.payloads import grid_state
from gateway.meters.runtime import MeterRuntime
from gateway.mqtt import payloads
from gateway.mqtt.bridge import MqttBridge
from gateway.mqtt.ingress import (
    ProposalInbox,
    ProposalRules,
    ReadProposal,
    read_proposal,
    superseded_reply,
)
from gateway.mqtt.outbox import Lane
from gateway.mqtt.topics import Topics
from gateway.pool_grid import PoolGrid
from gateway.pool_state import restore_proposals, saved_pool_state
from gateway.proposals import error_reply, ok_reply
from gateway.results import DistributionResult, build_result
from gateway.state_file import PoolState
from gateway.tasks import honour_cancellation
from gateway.telemetry import PoolLayout
from gateway.timefmt import rfc3339

log = logging.getLogger(__name__)
_refusals = LogLimiter(log)
"""Refused proposals: one line per pool every 10 s at most, with a count."""


class PoolController:
    """Resolves one pool's proposals and drives its chargers."""

    def __init__(
        self,
        layout: PoolLayout,
        pool_config: PoolConfig,
        gateway_config: GatewayConfig,
        chargers: Mapping[str, ChargerRuntime],
        bridge: MqttBridge,
        topics: Topics,
        clock: Clock,
        grid: GridLimits | None = None,
        meter: MeterRuntime | None = None,
    ) -> None:
        self.name = layout.name
        self.layout = layout
        self.pool_config = pool_config
        self.config = gateway_config
        self.chargers = [chargers[cid] for cid in layout.charger_ids]
        self.bridge = bridge
        self.topics = topics
        self._clock = clock
        self.manager = PowerManager(
            max_proposal_age=gateway_config.power.max_proposal_age,
            default_power=pool_config.default_power,
        )
        self.distributor = PoolDistributor(gateway_config.distribution)
        self._recheck = Recheck(gateway_config.distribution.recheck_interval)
        self.bounds: SystemBounds | None = None
        self.last_result: DistributionResult | None = None
        self._published_status: dict[str, dict[str, Any]] = {}
        self._published_target: float | None = None
        self.grid = None
        if grid is not None and meter is not None:
            self.grid = PoolGrid(grid, meter, layout.members, gateway_config.power.max_data_age)
        self._grid_stale: bool | None = None
        self._wake = asyncio.Event()
        if meter is not None:
            meter.listen(self._wake.set)  # a load step reaches the chargers at once
        self._inbox = ProposalInbox()
        self._announce = False
        self.distributions = 0
        self.switches = PoolSwitches(self.chargers, on_done=self._wake.set)

    # ------------------------------------------------------------------ inputs
    async def on_connect(self) -> None:
        """Nothing to send: retained state is republished by the bridge itself."""

    def clock(self) -> float:
        """Monotonic seconds: the time the controller decides on."""
        return self._clock.now()

    async def on_tick(self, now: float) -> None:
        """Refresh the system bounds, drop expired proposals, run a distribution."""
        bounds = self._system_bounds(now)
        if bounds != self.bounds:
            self.bounds = bounds
            self.manager.set_system_bounds(bounds, now)
            await self.bridge.publish(
                self.topics.pool(self.name, "system_power_bounds"),
                payloads.dumps(payloads.system_bounds(bounds, wall_at(self._clock, now))),
                qos=1,
                retain=True,
            )
            self._announce = True
        self._drop_expired(now)
        await self.publish_status(now)
        await self._publish_grid(now)
        self._wake.set()

    def _drop_expired(self, now: float) -> None:
        dropped = self.manager.drop_expired(now)
        if dropped:
            log.info("pool %s: proposals expired: %s", self.name, ", ".join(dropped))
            self._announce = True

    async def on_proposal_message(self, message: aiomqtt.Message) -> None:
        """Read one proposal: refuse it with a reply, or keep it for `apply_proposals`.

        A valid proposal waits in the inbox until the batch of messages it came in has
        been read; a newer one from the same source in that batch supersedes it.
        """
        read = read_proposal(
            message,
            self.topics.base,
            self.topics.propose_power_response(self.name),
            self._proposal_rules,
        )
        if read is None:  # empty payload: a cleared retained proposal, no reply
            self._inbox.counts.ignored += 1
            return
        if read.error is None and read.request is not None:
            too_many = self._inbox.refusal(read, self.manager.sources())
            if too_many is not None:
                read = ReadProposal(read.reply, None, too_many)
        if read.error is not None:
            self._inbox.counts.refused += 1
            _refusals.info(
                ("refused", self.name), "pool %s: proposal refused: %s", self.name, read.error
            )
            body = error_reply(read.error.source, str(read.error), read.error.transaction)
            await self._reply(read, body)
            return
        superseded = self._inbox.offer(read)
        if superseded is not None and superseded.request is not None:
            await self._reply(superseded, superseded_reply(superseded.request), Lane.BULK)

    async def apply_proposals(self) -> None:
        """Apply the newest pending proposal of every source, reply ok, and wake control."""
        pending = self._inbox.take()
        if not pending:
            return
        now = self.clock()
        for read in pending:
            request = read.request
            assert request is not None
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
            await self._reply(read, ok_reply(request.source, request.transaction))
        self._announce = True
        self._wake.set()
        await self.publish_status(now)

    async def _reply(
        self, read: ReadProposal, body: dict[str, Any], lane: Lane | None = None
    ) -> None:
        # A superseded notice is best effort (QoS 0): under a flood it is most of the
        # traffic, and acknowledging each would slow the broker for everyone.
        await self.bridge.publish(
            read.reply.topic,
            payloads.dumps(body),
            qos=0 if lane is Lane.BULK else 1,
            properties=read.reply.properties,
            lane=lane,
        )

    @functools.cached_property
    def _proposal_rules(self) -> ProposalRules:
        """What this pool accepts: the configured `max_expires_in` and its rated power."""
        rated = self.config.rated_power(self.pool_config)
        return ProposalRules(self.config.power.max_expires_in, rated)

    # ------------------------------------------------------------------ loop
    async def run(self) -> None:
        """Distribute whenever woken, or when a proposal expires; never ends by itself.
        Phase switches under way end with it."""
        try:
            await self._loop()
        finally:
            self.switches.cancel()

    async def _loop(self) -> None:
        while True:
            expiry = self.manager.next_expiry()
            if expiry is None:
                await self._wake.wait()
            else:
                # Dropped strictly after its age: wake a moment after the expiry time.
                await self._wake_or_sleep(max(0.0, expiry - self.clock()) + 0.001)
            self._wake.clear()
            try:
                now = self.clock()
                self._drop_expired(now)
                await self.distribute(now)
            except Exception:  # a bug must not stop control; the next tick tries again
                log.exception("pool %s: distribution failed", self.name)
            honour_cancellation()  # a write cancelled mid-request may come back as an error

    async def _wake_or_sleep(self, delay: float) -> None:
        """Return when woken or after `delay` seconds on the clock, whichever is first."""
        sleeper = asyncio.ensure_future(self._clock.sleep(delay))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    async def distribute(self, now: float) -> DistributionResult | None:
        """Run the distributor and write every changed limit; publish what happened."""
        target = self.manager.target
        headroom = self.headroom(now)
        limit: PhaseLimit | None = self.pool_config.phase_limit
        if headroom is not None:
            limit = headroom.headroom.as_tuple()
            if headroom.stale != self._grid_stale:
                self._grid_stale = headroom.stale
                self._announce = True  # say in a result that the fallback (no longer) applies
        inputs = distribution_inputs(target, limit, self.chargers, now)
        if not self._announce and not self._recheck.due(inputs, now):
            await self._publish_target(now)
            return None  # nothing changed since the last one, and it is not due again yet
        self._recheck.ran(inputs, now)
        allocation = self.distributor.allocate(target, self.chargers, limit, now)
        switches = self.switches.due(allocation.phases)
        wanted = {c.id: 0.0 if c.id in switches else allocation.limits[c.id] for c in self.chargers}
        pending = {
            charger.id: wanted[charger.id]
            for charger in self.chargers
            if charger.commanded != wanted[charger.id] and not charger.switching
        }
        for charger in self.chargers:
            charger.ev_resume = allocation.resume.get(charger.id, "ok")
        if not pending and not self._announce and not switches:
            await self._publish_target(now)
            return None
        # a phase switch's pause at 0 A is one of the cuts
        outcomes = await write_limits(self.chargers, pending)
        if not all(outcome.ok for outcome in outcomes.values()):
            self._recheck.forget()  # try again at the next tick
        self.switches.start(switches, outcomes)
        self.distributions += 1
        result = build_result(
            now=wall_at(self._clock, now),
            target=target,
            component_ids=self.layout.charger_ids,
            allocation=as_written(allocation, self.chargers, outcomes),
            outcomes=outcomes,
            ev_resume=allocation.resume,
        )
        note = "" if headroom is None or self.grid is None else self.grid.fallback_note(headroom)
        if note:
            result = dataclasses.replace(result, message=result.message + note)
        self.last_result = result
        self._announce = False
        await self.bridge.publish(
            self.topics.pool(self.name, "power_distribution_results"),
            payloads.dumps(result.payload()),
        )
        await self._publish_target(now)
        await self.publish_status(now)
        return result

    # ------------------------------------------------------------------ reports
    async def _publish_target(self, now: float) -> None:
        """The pool's target power, retained, whenever it changed."""
        target = self.manager.target
        if target == self._published_target:
            return
        self._published_target = target
        await self.bridge.publish(
            self.topics.pool(self.name, "target"),
            payloads.dumps(
                {"timestamp": rfc3339(wall_at(self._clock, now)), "target_power": target}
            ),
            qos=1,
            retain=True,
        )

    async def publish_status(self, now: float) -> None:
        """Publish each source's power_status when it changed; clear withdrawn ones."""
        current: dict[str, dict[str, Any]] = {}
        result = self.last_result.payload() if self.last_result else None  # once, not per source
        for source in self.manager.sources():
            report = self.manager.report(source)
            if report is None:
                continue
            proposal = self.manager.proposal(source)
            current[source] = {
                "source": source,
                "priority": report.priority,
                "proposed_power": payloads.watts(proposal.power) if proposal is not None else None,
                "target_power": payloads.watts(report.target_power),
                "bounds": payloads.bounds_payload(report.bounds),
                "distribution_result": result,
            }
        for source, body in current.items():
            if self._published_status.get(source) == body:
                continue
            self._published_status[source] = body
            await self.bridge.publish(
                self.topics.power_status(self.name, source),
                payloads.dumps({"timestamp": rfc3339(wall_at(self._clock, now)), **body}),
                qos=1,
                retain=True,
            )
        for source in [s for s in self._published_status if s not in current]:
            del self._published_status[source]
            await self.bridge.clear_retained(self.topics.power_status(self.name, source))

    # ------------------------------------------------------------------ grid
    def headroom(self, now: float) -> GridHeadroom | None:
        """What the pool's EVs may take per grid phase (None: no grid meter)."""
        return None if self.grid is None else self.grid.headroom(self.chargers, now)

    def stale_meters(self, now: float) -> tuple[str, ...]:
        """The grid meter's id while the pool falls back for want of its data."""
        grid = self.grid
        return (grid.meter.id,) if grid is not None and grid.stale(now) else ()

    async def _publish_grid(self, now: float) -> None:
        headroom = self.headroom(now)
        if headroom is None:
            return
        await self.bridge.publish(
            self.topics.pool(self.name, "grid"),
            payloads.dumps(grid_state(headroom, wall_at(self._clock, now))),
        )

    # ------------------------------------------------------------------ restarts
    def saved_state(self) -> PoolState:
        """What this pool keeps across a restart (see gateway/pool_state.py)."""
        return saved_pool_state(self.manager, self.chargers, self._clock)

    def restore(self, state: PoolState, now: float) -> list[str]:
        """Take back a previous run's proposals that have not expired; their sources."""
        longest = max(self.config.power.max_proposal_age, self.config.power.max_expires_in)
        restored = restore_proposals(self.manager, state, now, self._clock.wall(), longest)
        if restored:
            self._announce = True
            self._wake.set()
        return restored

    # ------------------------------------------------------------------ helpers
    def _system_bounds(self, now: float) -> SystemBounds:
        # A charger that may switch to one phase charges from its 1-phase minimum.
        working = [
            (charger.latest, 1 if charger.id in self.switches else len(charger.phases))
            for charger in self.chargers
            if charger.latest is not None and charger.status(now) is ChargerStatus.WORKING
        ]
        if not working:
            return NO_POWER
        return system_bounds(
            working, self.config.distribution.min_current, self.config.distribution.nominal_voltage
        )
