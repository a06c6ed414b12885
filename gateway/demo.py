"""`ev-gateway demo`: the gateway on simulated chargers, with live figures on the terminal.

With no config, a built-in site: three simulated chargers (a 3-phase EV, a 1-phase EV
on a rotated charger, an empty bay) in one pool with a 32 A fuse per phase and a
default power of 11 kW, so the EVs charge without any actor proposing. The configured
broker is used when reachable; otherwise an embedded one (amqtt, MQTT 3.1.1) starts on
loopback and its address is printed so you can watch with `mosquitto_sub`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

from gateway.config import GatewayConfig, config_from_dict, load_config
from gateway.daemon import Gateway
from gateway.embedded_broker import broker_reachable, embedded_broker

DEMO_SITE: dict[str, Any] = {
    "power": {"resampling_period": 1.0, "max_data_age": 5.0},
    "chargers": [
        {
            "id": "bay-1",
            "adapter": "simulated",
            "max_current": 16.0,
            "phases": [1, 2, 3],
            "simulated_ev": {"plugged": True, "phases": 3, "max_current": 16.0},
        },
        {
            "id": "bay-2",
            "adapter": "simulated",
            "max_current": 32.0,
            "phases": [2, 3, 1],
            "simulated_ev": {"plugged": True, "phases": 1, "max_current": 32.0},
        },
        {
            "id": "bay-3",
            "adapter": "simulated",
            "max_current": 16.0,
            "simulated_ev": {"plugged": False},
        },
    ],
    "pools": [
        {
            "name": "default",
            "chargers": ["bay-1", "bay-2", "bay-3"],
            "phase_limit": 32.0,
            "default_power": 11000.0,
        }
    ],
}


def demo_config(path: str | None) -> GatewayConfig:
    """The given config, or the built-in demo site."""
    if path is not None:
        return load_config(path)
    return config_from_dict(DEMO_SITE, "<built-in demo site>")


def _with_broker(config: GatewayConfig, port: int) -> GatewayConfig:
    data = config.model_dump()
    data["mqtt"] = {**data["mqtt"], "host": "127.0.0.1", "port": port, "protocol": "3.1.1"}
    data["pools"] = [p.model_dump() for p in config.effective_pools()]
    return config_from_dict(data, "<demo>")


async def run_demo(path: str | None, duration: float | None) -> None:
    """Run until Ctrl-C (or `duration` seconds), printing one status line a second."""
    config = demo_config(path)
    async with contextlib.AsyncExitStack() as stack:
        if not await broker_reachable(config.mqtt.host, config.mqtt.port):
            port = await stack.enter_async_context(embedded_broker())
            print(
                f"no MQTT broker at {config.mqtt.host}:{config.mqtt.port}; started an embedded "
                f"one at 127.0.0.1:{port}\n  watch: mosquitto_sub -p {port} -t "
                f"'{config.mqtt.base_topic}/#' -v",
                flush=True,
            )
            config = _with_broker(config, port)
        else:
            print(f"using MQTT broker {config.mqtt.host}:{config.mqtt.port}", flush=True)
        gateway = Gateway(config)
        task = asyncio.create_task(gateway.run())
        try:
            await _show(gateway, duration)
        finally:
            gateway.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 5)


async def _show(gateway: Gateway, duration: float | None) -> None:
    loop = asyncio.get_running_loop()
    end = None if duration is None else loop.time() + duration
    await gateway.ready.wait()
    while end is None or loop.time() < end:
        await asyncio.sleep(1.0)
        print(status_line(gateway), flush=True)


def status_line(gateway: Gateway) -> str:
    """One line of live figures: per pool power, grid-phase currents and chargers."""
    from gateway.telemetry import snapshots

    now = gateway.clock.now()
    latest = gateway.latest()
    parts = []
    for name, snap in snapshots(
        gateway.pools, latest, now, gateway.config.power.max_data_age
    ).items():
        controller = gateway.controllers[name]
        parts.append(
            f"[{name}] target {controller.manager.target:7.0f} W  power {snap.power:7.0f} W  "
            f"L1 {snap.current.p1:5.1f} A  L2 {snap.current.p2:5.1f} A  "
            f"L3 {snap.current.p3:5.1f} A"
            + (f"  missing {','.join(snap.missing)}" if snap.missing else "")
        )
    for cid, charger in gateway.chargers.items():
        sample = charger.latest
        limit = (
            "-" if sample is None or sample.current_limit is None else f"{sample.current_limit:.1f}"
        )
        parts.append(f"  {cid}: {charger.status(now).value:<11} limit {limit} A")
    return "\n".join(parts)


if __name__ == "__main__":  # pragma: no cover
    asyncio.run(run_demo(sys.argv[1] if len(sys.argv) > 1 else None, None))
