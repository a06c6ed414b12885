"""The daemon: chargers, pollers, the MQTT bridge and the pools, wired in one TaskGroup.

Data flows one way each direction (DESIGN.md): pollers keep each charger's latest
sample; every resampling tick the pools' figures and the chargers' states are
published; proposals arriving on MQTT go to the pool's controller, which drives the
chargers through their adapters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

import aiomqtt

from gateway import __version__
from gateway.adapters.base import Charger
from gateway.adapters.factory import open_charger
from gateway.adapters.ocpp import OcppCentralSystem
from gateway.config import GatewayConfig
from gateway.control import PoolController
from gateway.core.formulas import PoolMember
from gateway.core.model import ChargerSample
from gateway.core.status import ChargerStatus, StatusTracker
from gateway.mqtt import payloads
from gateway.mqtt.bridge import MqttBridge
from gateway.mqtt.homeassistant import discovery_filters, discovery_messages, is_stale_discovery
from gateway.mqtt.reconcile import reconcile_retained
from gateway.mqtt.topics import Topics
from gateway.poller import ChargerPoller
from gateway.sdnotify import Notifier
from gateway.telemetry import PoolLayout, charger_message, pool_messages, snapshots

log = logging.getLogger(__name__)

Clock = Callable[[], float]
YIELD_EVERY = 50
"""Charger states published per tick between two yields to the event loop."""


class Gateway:
    """One running gateway; `run()` until `stop()` is called or the task is cancelled."""

    def __init__(self, config: GatewayConfig, clock: Clock = time.time) -> None:
        self.config = config
        self.clock = clock
        self.topics = Topics(config.mqtt.base_topic)
        self.status = StatusTracker(config.power.max_data_age)
        self.pollers: dict[str, ChargerPoller] = {}
        self.chargers: dict[str, Charger] = {}
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
        self.bridge = MqttBridge(
            config.mqtt,
            self.topics,
            subscriptions=subscriptions,
            on_message=self._on_message,
            on_connect=self._on_connect,
        )
        self.controllers: dict[str, PoolController] = {}
        self.ocpp: OcppCentralSystem | None = None
        self.ticks = 0
        self.notifier = Notifier()
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._discovery_reconciled = False

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
                )
                await stack.enter_async_context(central)
                self.ocpp = central
            for charger_config in self.config.chargers:
                charger = await stack.enter_async_context(
                    open_charger(charger_config, self.config, central)
                )
                self.chargers[charger_config.id] = charger
                self.pollers[charger_config.id] = ChargerPoller(
                    charger, charger_config.poll_interval, charger_config.timeout
                )
            self._build_controllers()
            self._publish_static_state()
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self.bridge.run(), name="mqtt")
                    for poller in self.pollers.values():
                        group.create_task(poller.run(), name=f"poll-{poller.charger_id}")
                    group.create_task(self._tick_loop(), name="ticks")
                    for controller in self.controllers.values():
                        group.create_task(controller.run(), name=f"control-{controller.name}")
                    self.ready.set()
                    await self._stop.wait()
                    self.notifier.notify("STOPPING=1")
                    await self.bridge.stop()
                    raise _Stopped
            except* _Stopped:
                pass

    def stop(self) -> None:
        """Ask `run()` to publish `offline` and return."""
        self._stop.set()

    # ----------------------------------------------------------------- state
    def latest(self) -> dict[str, ChargerSample]:
        """Every charger's latest sample (absent when it never answered)."""
        return {cid: p.latest for cid, p in self.pollers.items() if p.latest is not None}

    def charger_status(self, charger_id: str, now: float) -> ChargerStatus:
        return self.status.status(charger_id, self.pollers[charger_id].latest, now)

    def _build_controllers(self) -> None:
        for layout, pool_config in zip(self.pools, self.config.effective_pools(), strict=True):
            self.controllers[layout.name] = PoolController(
                layout=layout,
                pool_config=pool_config,
                gateway_config=self.config,
                chargers={cid: self.chargers[cid] for cid in layout.charger_ids},
                latest=self.latest,
                status=self.status,
                bridge=self.bridge,
                topics=self.topics,
                clock=self.clock,
            )

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
        return list(discovery_messages(self.config, self.topics))

    # ----------------------------------------------------------------- ticks
    async def _tick_loop(self) -> None:
        period = self.config.power.resampling_period
        while True:
            now = self.clock()
            next_tick = math.floor(now / period + 1) * period
            await asyncio.sleep(max(0.0, next_tick - now))
            try:
                await self.tick(self.clock())
            except Exception:  # a bug in one tick must not stop the telemetry
                log.exception("error in resampling tick")

    async def tick(self, now: float) -> None:
        """Publish every pool's figures and every charger's state, then update control."""
        self.ticks += 1
        latest = self.latest()
        pool_snapshots = snapshots(self.pools, latest, now, self.config.power.max_data_age)
        for pool in self.pools:
            for topic, payload in pool_messages(self.topics, pool, pool_snapshots[pool.name]):
                await self.bridge.publish(topic, payload)
        for index, charger_config in enumerate(self.config.chargers):
            if index % YIELD_EVERY == YIELD_EVERY - 1:
                # Publishing never waits, so a large site's tick would hold the loop:
                # let proposals and polls in between.
                await asyncio.sleep(0)
            poller = self.pollers[charger_config.id]
            topic, payload = charger_message(
                self.topics,
                charger_config.id,
                tuple(charger_config.phases),
                self.charger_status(charger_config.id, now),
                poller.latest,
                poller.last_error,
                now,
            )
            await self.bridge.publish(topic, payload)
        for controller in self.controllers.values():
            await controller.on_tick(now)
        self._notify_systemd(now)

    def _notify_systemd(self, now: float) -> None:
        """READY after the first complete tick, then a watchdog ping after every tick."""
        answering = sum(1 for p in self.pollers.values() if p.failures == 0 and p.latest)
        status = (
            f"STATUS=MQTT {'up' if self.bridge.connected.is_set() else 'down'}, "
            f"{answering}/{len(self.pollers)} chargers answering"
        )
        lines = [status, "WATCHDOG=1"] if self.notifier.watchdog_interval else [status]
        if self.ticks == 1:
            lines.append("READY=1")
        self.notifier.notify(*lines)

    # ----------------------------------------------------------------- MQTT input
    async def _on_connect(self) -> None:
        for controller in self.controllers.values():
            await controller.on_connect()
        if not self._discovery_reconciled:
            await self._clear_stale_discovery()

    async def _clear_stale_discovery(self) -> None:
        """Remove Home Assistant entities of chargers and pools that left the config.

        With Home Assistant disabled, every entity this gateway announced before goes.
        """
        enabled = self.config.homeassistant.enabled
        current = {topic for topic, _ in self._discovery()} if enabled else set()
        try:
            await reconcile_retained(
                self.config.mqtt,
                discovery_filters(self.config),
                lambda topic: not is_stale_discovery(self.config, topic, current),
            )
        except (aiomqtt.MqttError, OSError) as exc:
            log.warning("could not check retained discovery configs (next connect retries): %s",
                        exc)
            return
        self._discovery_reconciled = True

    async def _on_message(self, message: aiomqtt.Message) -> None:
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
        from gateway.proposals import error_reply, reply_target

        topic, properties = reply_target(message, self.topics.propose_power_response(pool))
        known = ", ".join(p.name for p in self.pools)
        body = error_reply(None, f"unknown pool {pool!r}; known pools: {known}", None)
        await self.bridge.publish(topic, payloads.dumps(body), qos=1, properties=properties)


class _Stopped(Exception):
    """Raised inside the TaskGroup to cancel every task on a planned stop."""


async def run_gateway(config: GatewayConfig) -> None:
    """Run a gateway until SIGINT/SIGTERM, then stop it cleanly."""
    import signal

    gateway = Gateway(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, gateway.stop)
    await gateway.run()
