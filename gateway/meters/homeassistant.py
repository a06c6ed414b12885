"""Home Assistant discovery for grid meters and pool headroom (pure).

Per meter a device "Grid meter {id}" with its current per grid phase; per pool with a
`grid` the headroom per grid phase and a "grid meter stale" problem sensor, attached to
the pool's device. Same conventions as the pool and charger entities (availability on
`{base}/bridge/state`, stable unique ids, `via_device` the gateway). `meter_discovery`
yields (topic, JSON payload) pairs to publish retained next to the others.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from gateway.config import GatewayConfig
from gateway.meters.payloads import grid_topic, meter_state_topic
from gateway.mqtt.homeassistant import ORIGIN, _sensor, _slug
from gateway.mqtt.topics import Topics


def meter_discovery(config: GatewayConfig, topics: Topics) -> Iterator[tuple[str, str]]:
    """(topic, JSON payload) of the meter and headroom discovery configs."""
    prefix = config.homeassistant.discovery_prefix
    gateway_id = f"evgw_{_slug(config.mqtt.base_topic)}"
    common = {"availability_topic": topics.bridge_state, "origin": ORIGIN}
    for meter in config.meters:
        meter_id = f"{gateway_id}_meter_{_slug(meter.id)}"
        device = {
            "identifiers": [meter_id],
            "name": f"Grid meter {meter.id}",
            "model": meter.profile or meter.adapter,
            "via_device": gateway_id,
        }
        state = meter_state_topic(topics, meter.id)
        for n in (1, 2, 3):
            # null while the meter never answered: "None" makes the sensor unknown
            template = (
                f"{{{{ value_json.current_per_phase.value_p{n} "
                f"if value_json.current_per_phase else None }}}}"
            )
            unique_id, body = _sensor(
                meter_id, f"current_l{n}", f"Current L{n}", state, template, "current", "A"
            )
            yield _message(prefix, "sensor", unique_id, body, common, device)
    for pool in config.effective_pools():
        if pool.grid is None:
            continue
        pool_id = f"{gateway_id}_pool_{_slug(pool.name)}"
        device = {"identifiers": [pool_id]}  # the pool's device, declared with its sensors
        grid = grid_topic(topics, pool.name)
        for n in (1, 2, 3):
            template = f"{{{{ value_json.headroom_p{n} }}}}"
            unique_id, body = _sensor(
                pool_id, f"headroom_l{n}", f"Grid headroom L{n}", grid, template, "current", "A"
            )
            yield _message(prefix, "sensor", unique_id, body, common, device)
        unique_id = f"{pool_id}_grid_stale"
        body = {
            "name": "Grid meter stale",
            "unique_id": unique_id,
            "object_id": unique_id,
            "state_topic": grid,
            "value_template": "{{ 'ON' if value_json.stale else 'OFF' }}",
            "device_class": "problem",
            "expire_after": 60,
        }
        yield _message(prefix, "binary_sensor", unique_id, body, common, device)


def _message(
    prefix: str,
    component: str,
    unique_id: str,
    body: dict[str, Any],
    common: dict[str, Any],
    device: dict[str, Any],
) -> tuple[str, str]:
    payload = {**body, **common, "device": device}
    return f"{prefix}/{component}/{unique_id}/config", json.dumps(payload)
