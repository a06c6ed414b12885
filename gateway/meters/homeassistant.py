"""Home Assistant discovery for grid meters and pool headroom (pure).

Per meter a device "Grid meter {id}" with its current per grid phase; per pool with a
`grid` the headroom per grid phase and a "grid meter stale" problem sensor, attached to
the pool's device. Same conventions as the pool and charger entities (availability on
`{base}/bridge/state`, stable unique ids, `via_device` the gateway). `meter_discovery`
yields (topic, JSON payload) pairs to publish retained next to the others.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.config import GatewayConfig
from gateway.meters.payloads import grid_topic, meter_state_topic
from gateway.mqtt.homeassistant import discovery_message, gateway_id, numeric_sensor, slug
from gateway.mqtt.topics import Topics


def meter_discovery(config: GatewayConfig, topics: Topics) -> Iterator[tuple[str, str]]:
    """(topic, JSON payload) of the meter and headroom discovery configs."""
    prefix = config.homeassistant.discovery_prefix
    gid = gateway_id(config)
    bridge = [{"topic": topics.bridge_state}]
    for meter in config.meters:
        meter_id = f"{gid}_meter_{slug(meter.id)}"
        device = {
            "identifiers": [meter_id],
            "name": f"Grid meter {meter.id}",
            "model": meter.profile or meter.adapter,
            "via_device": gid,
        }
        state = meter_state_topic(topics, meter.id)
        for n in (1, 2, 3):
            # null while the meter never answered: the sensor is unknown
            entity = numeric_sensor(
                meter_id, f"current_l{n}", f"Current L{n}", state,
                f"value_json.current_per_phase.value_p{n}", "current",
                guard="value_json.current_per_phase",
            )
            yield discovery_message(prefix, entity, device, bridge)
    for pool in config.effective_pools():
        if pool.grid is None:
            continue
        pool_id = f"{gid}_pool_{slug(pool.name)}"
        device = {"identifiers": [pool_id]}  # the pool's device, declared with its sensors
        grid = grid_topic(topics, pool.name)
        for n in (1, 2, 3):
            entity = numeric_sensor(
                pool_id, f"headroom_l{n}", f"Grid headroom L{n}", grid,
                f"value_json.headroom_p{n}", "current",
            )
            yield discovery_message(prefix, entity, device, bridge)
        stale = {
            "name": "Grid meter stale",
            "state_topic": grid,
            "value_template": "{{ 'ON' if value_json.stale else 'OFF' }}",
            "device_class": "problem",
            "expire_after": 60,
        }
        entity = ("binary_sensor", f"{pool_id}_grid_stale", stale)
        yield discovery_message(prefix, entity, device, bridge)
