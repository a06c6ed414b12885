"""Topic names of the MQTT interface (docs/mqtt.md), built in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic the gateway publishes or subscribes to, under one base topic."""

    base: str

    @property
    def bridge_state(self) -> str:
        return f"{self.base}/bridge/state"

    @property
    def bridge_info(self) -> str:
        return f"{self.base}/bridge/info"

    def pool(self, pool: str, leaf: str) -> str:
        """`{base}/pools/{pool}/{leaf}` for component_ids, power, current_per_phase, ..."""
        return f"{self.base}/pools/{pool}/{leaf}"

    def power_status(self, pool: str, source: str) -> str:
        return f"{self.base}/pools/{pool}/power_status/{source}"

    def propose_power(self, pool: str) -> str:
        return f"{self.base}/pools/{pool}/propose_power"

    def propose_power_response(self, pool: str) -> str:
        return f"{self.base}/pools/{pool}/propose_power/response"

    @property
    def propose_power_filter(self) -> str:
        """Subscription filter for every pool's proposal topic."""
        return f"{self.base}/pools/+/propose_power"

    def pool_of_proposal(self, topic: str) -> str | None:
        """The pool name in a proposal topic, or None when the topic is not one."""
        prefix = f"{self.base}/pools/"
        suffix = "/propose_power"
        if topic.startswith(prefix) and topic.endswith(suffix):
            pool = topic[len(prefix) : -len(suffix)]
            return pool if pool and "/" not in pool else None
        return None

    def charger_state(self, charger_id: str) -> str:
        return f"{self.base}/chargers/{charger_id}/state"
