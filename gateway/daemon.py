"""The daemon: charger runtimes, the MQTT bridge and the pools, wired in one TaskGroup.

Data flows one way each direction: each charger's runtime polls it and keeps its
latest sample; every resampling tick the pools' figures and the chargers' states are
published; proposals arriving on MQTT go to the pool's controller, which drives the
chargers through their runtimes. Every decision runs on the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from contextlib import AsyncExitStack

import aiomqtt

from gateway import __version__
from gateway.adapters.factory import open_runtime
from gateway.adapters.ocpp import OcppCentralSystem
from gateway.chargers import ChargerRuntime
from gateway.clock import Clock, SystemClock
from gateway.config import GatewayConfig
from gateway.control import PoolController
from gateway.core.formulas import PoolMember
from gateway.core.model import ChargerSample
from gateway.meters.factory import grid_limits
from gateway.meters.homeassistant import meter_discovery
from gateway.meters.runtime import MeterRuntime, open_meter_runtime
from gateway.mqtt import payloads
from gateway.mqtt.bridge import MqttBridge
from gateway.mqtt.homeassistant import discovery_filters, discovery_messages
from gateway.mqtt.reconcile import backed_by, reconcile_retained
from gateway.mqtt.topics import Topics
from gateway.open_files import ensure_open_files, needed
from gateway.sdnotify import Notifier
from gateway.state_file import GatewayState, StateFile
from gateway.tasks import cancel_until_done, insist_when_cancelled
from gateway.telemetry import (
    PoolLayout,
    StateSchedule,
    charger_message,
    pool_messages,
    snapshots,
    state_key,
)

log = logging.getLogger(__name__)

YIELD_EVERY = 50
"""Charger states published per tick between two yields to the event loop."""


class Gateway:
    """One running gateway; `run()` until `stop()` is called or the task is cancelled."""

    def __init__(self, config: GatewayConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.topics = Topics(config.mqtt.base_topic)
        self.chargers: dict[str, ChargerRuntime] = {}
        self.pools = [
            PoolLayout(
                pool.name,
                tuple(PoolMember(c, tuple(config.charger(c).phases)) for c in pool.chargers),
            )
            for pool in config.effective_pools()
        ]
        self.ha_status_topic = f"{config.homeassistant.discovery_prefix}/status"
        subscriptions = [self.topics.propose_power_filter]
        if config.homeassistant.enabled:
            subscriptions.append(self.ha_status_topic)
        self.meters: dict[str, MeterRuntime] = {}
        self._meter_topics = {m.topic: m.id for m in config.meters if m.topic is not None}
        subscriptions.extend(self._meter_topics)
        self.bridge = MqttBridge(
            config.mqtt,
            self.topics,
            subscriptions=subscriptions,
            on_message=self._on_message,
            on_connect=self._on_connect,
            on_batch_end=self._apply_proposals,
        )
        self.controllers: dict[str, PoolController] = {}
        self.ocpp: OcppCentralSystem | None = None
        self.ticks = 0
        self.state_schedule = StateSchedule(config.mqtt.state_heartbeat)
        self.notifier = Notifier()
        self.ready = asyncio.Event()
        self.state_file = StateFile(config.state.resolved_directory(), config.mqtt.base_topic)
        self._stop = asyncio.Event()
        self._retained_reconciled = False
        self._reconcile: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- lifecycle
    async def run(self) -> None:
        """Open the chargers, then poll, publish and control until stopped."""
        async with AsyncExitStack() as stack:
            central = None
            if any(c.adapter == "ocpp" for c in self.config.chargers):
                central = OcppCentralSystem(
                    self.config.ocpp,
                    list(self.config.chargers),
                    self.config.distribution.nominal_voltage,
                    probe_interval=self.config.power.max_data_age / 2,
                    clock=self.clock,
                )
                await stack.enter_async_context(central)
                self.ocpp = central
            for charger_config in self.config.chargers:
                self.chargers[charger_config.id] = await stack.enter_async_context(
                    open_runtime(charger_config, self.config, self.clock, central)
                )
            for meter_config in self.config.meters:
                self.meters[meter_config.id] = await stack.enter_async_context(
                    open_meter_runtime(meter_config, self.clock)
                )
            self._build_controllers()
            self._restore_state()
            self._publish_static_state()
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(self.bridge.run(), name="mqtt")]
                    for charger in self.chargers.values():
                        tasks.append(group.create_task(charger.run(), name=f"charger-{charger.id}"))
                    for meter in self.meters.values():
                        tasks.append(group.create_task(meter.run(), name=f"meter-{meter.id}"))
                    tasks.append(group.create_task(self._tick_loop(), name="ticks"))
                    for controller in self.controllers.values():
                        tasks.append(
                            group.create_task(controller.run(), name=f"control-{controller.name}")
                        )
                    group.create_task(insist_when_cancelled(tasks), name="shutdown-guard")
                    self.ready.set()
                    await self._stop.wait()
                    self.notifier.notify("STOPPING=1")
                    if self._reconcile is not None:
                        self._reconcile.cancel()
                    self.save_state()
                    await self.bridge.stop()
                    insist = asyncio.create_task(cancel_until_done(tasks))
                    raise _Stopped
            except* _Stopped:
                insist.cancel()

    def stop(self) -> None:
        """Ask `run()` to publish `offline` and return."""
        self._stop.set()

    # ----------------------------------------------------------------- state
    def latest(self) -> dict[str, ChargerSample]:
        """Every charger's latest sample (absent when it never answered)."""
        return {cid: c.latest for cid, c in self.chargers.items() if c.latest is not None}

    def _build_controllers(self) -> None:
        for layout, pool_config in zip(self.pools, self.config.effective_pools(), strict=True):
            self.controllers[layout.name] = PoolController(
                layout=layout,
                pool_config=pool_config,
                gateway_config=self.config,
                chargers=self.chargers,
                bridge=self.bridge,
                topics=self.topics,
                clock=self.clock,
                grid=grid_limits(self.config, pool_config),
                meter=self.meters[pool_config.grid.meter] if pool_config.grid else None,
            )

    def _restore_state(self) -> None:
        """Take back the proposals a previous run kept (see gateway/state_file.py)."""
        state = self.state_file.load()
        now = self.clock.now()
        for name, pool_state in state.pools.items():
            controller = self.controllers.get(name)
            if controller is None:
                continue
            restored = controller.restore(pool_state, now)
            if restored:
                log.info("pool %s: proposals restored from %s: %s", name, self.state_file.path,
                         ", ".join(restored))  # fmt: skip

    def save_state(self) -> None:
        """Keep the pools' proposals and limits (written only when they changed)."""
        if self.state_file.path is None:
            return
        state = GatewayState({name: c.saved_state() for name, c in self.controllers.items()})
        self.state_file.save(state)

    def _publish_static_state(self) -> None:
        """Retained topics known from the config; the bridge sends them on every connect."""
        info = {
            "version": __version__,
            "pools": {p.name: p.charger_ids for p in self.pools},
            "chargers": {
                c.id: {"adapter": c.adapter, "profile": c.profile} for c in self.config.chargers
            },
        }
        retained = [(self.topics.bridge_info, payloads.dumps(info))]
        for pool in self.pools:
            retained.append(
                (self.topics.pool(pool.name, "component_ids"), payloads.dumps(pool.charger_ids))
            )
        if self.config.homeassistant.enabled:
            retained.extend(self._discovery())
        for topic, payload in retained:
            # Not connected yet: this only fills the bridge's retained cache.
            self.bridge.remember_retained(topic, payload)

    def _discovery(self) -> list[tuple[str, str]]:
        """Every Home Assistant config: pools and chargers, then meters and headroom."""
        return [
            *discovery_messages(self.config, self.topics),
            *meter_discovery(self.config, self.topics),
        ]

    # ----------------------------------------------------------------- ticks
    async def _tick_loop(self) -> None:
        period = self.config.power.resampling_period
        clock = self.clock
        while True:
            now = clock.now()
            next_tick = math.floor(now / period + 1) * period
            await clock.sleep(next_tick - now)
            try:
                await self.tick(clock.now())
            except Exception:  # a bug in one tick must not stop the telemetry
                log.exception("error in resampling tick")

    async def tick(self, now: float) -> None:
        """Publish every pool's figures and every charger's state, then update control."""
        self.ticks += 1
        offset = self.clock.wall() - self.clock.now()
        latest = self.latest()
        pool_snapshots = snapshots(self.pools, latest, now, self.config.power.max_data_age)
        for pool in self.pools:
            snapshot = pool_snapshots[pool.name]
            stale = self.controllers[pool.name].stale_meters(now)
            if stale:  # the pool falls back for want of its meter's data: say so
                snapshot = dataclasses.replace(snapshot, missing=snapshot.missing + stale)
            for topic, payload in pool_messages(self.topics, pool, snapshot, offset):
                await self.bridge.publish(topic, payload)
        wall = now + offset
        for meter in self.meters.values():
            await self.bridge.publish(
                f"{self.topics.base}/meters/{meter.id}/state",
                payloads.dumps(meter.state(now, wall)),
            )
        schedule, count, published = self.state_schedule, len(self.chargers), 0
        for index, charger in enumerate(self.chargers.values()):
            status, sample, error = charger.status(now), charger.latest, charger.last_error
            spread = (index + 1) / count
            if schedule.heartbeat > 0:
                key = state_key(status, sample, error, charger.ev_resume)
                if not schedule.due(charger.id, key, now, spread):
                    continue
            published += 1
            if published % YIELD_EVERY == 0:
                # Publishing never waits, so a large site's tick would hold the loop:
                # let proposals and polls in between.
                await asyncio.sleep(0)
            topic, payload = charger_message(
                self.topics,
                charger.id,
                charger.phases,
                status,
                sample,
                error,
                now,
                offset,
                charger.ev_resume,
                charger.phases_in_use,
            )
            await self.bridge.publish(topic, payload)
        for controller in self.controllers.values():
            await controller.on_tick(now)
        self.save_state()
        self._notify_systemd(now)

    def _notify_systemd(self, now: float) -> None:
        """READY after the first complete tick, then a watchdog ping after every tick."""
        answering = sum(1 for c in self.chargers.values() if c.failures == 0 and c.latest)
        status = (
            f"STATUS=MQTT {'up' if self.bridge.connected.is_set() else 'down'}, "
            f"{answering}/{len(self.chargers)} chargers answering"
        )
        lines = [status, "WATCHDOG=1"] if self.notifier.watchdog_interval else [status]
        if self.ticks == 1:
            lines.append("READY=1")
        self.notifier.notify(*lines)

    # ----------------------------------------------------------------- MQTT input
    async def _on_connect(self) -> None:
        for controller in self.controllers.values():
            await controller.on_connect()
        reconciling = self._reconcile is not None and not self._reconcile.done()
        if not self._retained_reconciled and not reconciling:
            # on its own task: the broker's retained burst must not hold up proposals
            self._reconcile = asyncio.create_task(self._clear_stale_retained(), name="reconcile")

    async def _clear_stale_retained(self) -> None:
        """Clear retained topics of ours that the config and state no longer back.

        Home Assistant entities of chargers, pools and meters that left the config (all
        of them with Home Assistant disabled); pool topics of pools that are gone; and
        `power_status/{source}` of sources with no live proposal (left by an earlier
        run). Once per run; a failure is retried at the next connect.
        """
        enabled = self.config.homeassistant.enabled
        current = {topic for topic, _ in self._discovery()} if enabled else set()
        sources = {name: c.manager.sources for name, c in self.controllers.items()}
        keep = backed_by(self.config, self.topics, current, sources)
        filters = [*discovery_filters(self.config), f"{self.topics.base}/pools/#"]
        try:
            cleared = await reconcile_retained(self.config.mqtt, filters, keep)
        except (aiomqtt.MqttError, OSError) as exc:
            log.warning("could not check retained topics (next connect retries): %s", exc)
            return
        except Exception:  # a bug here must not go unseen, nor stop the daemon
            log.exception("checking retained topics failed")
            return
        if cleared:
            log.info("cleared %d retained topic(s) no longer backed: %s", len(cleared),
                     ", ".join(cleared[:10]) + (" ..." if len(cleared) > 10 else ""))  # fmt: skip
        self._retained_reconciled = True

    async def _on_message(self, message: aiomqtt.Message) -> None:
        meter_id = self._meter_topics.get(str(message.topic))
        if meter_id is not None:
            data = message.payload if isinstance(message.payload, bytes) else b""
            self.meters[meter_id].on_message(data, message.retain)
            return
        if str(message.topic) == self.ha_status_topic:
            if message.payload == b"online":
                # Home Assistant restarted: give it its entities again.
                for topic, payload in self._discovery():
                    await self.bridge.publish(topic, payload, qos=1, retain=True)
            return
        pool = self.topics.pool_of_proposal(str(message.topic))
        if pool is None:
            return
        controller = self.controllers.get(pool)
        if controller is None:
            await self._reply_unknown_pool(pool, message)
            return
        await controller.on_proposal_message(message)

    async def _reply_unknown_pool(self, pool: str, message: aiomqtt.Message) -> None:
        """An error reply naming the known pools; an empty payload gets none."""
        from gateway.proposals import error_reply, reply_target

        if not message.payload:
            return
        reply = reply_target(message, self.topics.propose_power_response(pool), self.topics.base)
        known = ", ".join(p.name for p in self.pools)
        shown = pool if len(pool) <= 64 else pool[:61] + "..."
        body = error_reply(None, f"unknown pool {shown!r}; known pools: {known}", None)
        await self.bridge.publish(
            reply.topic, payloads.dumps(body), qos=1, properties=reply.properties
        )

    async def _apply_proposals(self) -> None:
        """After each batch of MQTT messages: every pool applies its newest proposals."""
        for controller in self.controllers.values():
            await controller.apply_proposals()


class _Stopped(Exception):
    """Raised inside the TaskGroup to cancel every task on a planned stop."""


def run_daemon(config: GatewayConfig) -> None:
    """`ev-gateway run`: the gateway on uvloop when it is installed, else on asyncio's
    own loop. uvloop's timers, futures and sockets are native code, which roughly
    halves the event loop's share of the CPU; nothing else changes."""
    loop_factory = None
    try:
        import uvloop
    except ImportError:
        log.debug("uvloop not installed: the standard asyncio event loop is used")
    else:
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run_gateway(config))


async def run_gateway(config: GatewayConfig) -> None:
    """Run a gateway until SIGINT/SIGTERM, then stop it cleanly."""
    import signal

    ensure_open_files(needed(len(config.chargers), len(config.meters)))
    gateway = Gateway(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, gateway.stop)
    await gateway.run()
