"""`GatewayConfig`: every section together, with the checks that span sections."""

from __future__ import annotations

from pydantic import (
    Field,
    PrivateAttr,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.config.meters import MeterConfig
from gateway.config.sections import (
    ChargerConfig,
    DistributionConfig,
    HomeAssistantConfig,
    MqttConfig,
    OcppConfig,
    PoolConfig,
    PowerConfig,
    StateConfig,
)

DEFAULT_POOL = "default"


class GatewayConfig(BaseSettings):
    """The whole configuration (docs/configuration.md describes every key)."""

    model_config = SettingsConfigDict(
        env_prefix="EVGW_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    power: PowerConfig = Field(default_factory=PowerConfig)
    distribution: DistributionConfig = Field(default_factory=DistributionConfig)
    chargers: list[ChargerConfig] = Field(min_length=1)
    ocpp: OcppConfig = Field(default_factory=OcppConfig)
    homeassistant: HomeAssistantConfig = Field(default_factory=HomeAssistantConfig)
    pools: list[PoolConfig] = Field(default_factory=list)
    meters: list[MeterConfig] = Field(default_factory=list)
    state: StateConfig = Field(default_factory=StateConfig)
    _by_id: dict[str, ChargerConfig] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> GatewayConfig:
        # Messages start with the key they are about: `_describe` shows it as the key.
        seen: set[str] = set()
        for index, charger in enumerate(self.chargers):
            if charger.id in seen:
                raise ValueError(f"chargers[{index}].id: duplicate charger id {charger.id!r}")
            seen.add(charger.id)
        cp_seen: set[str] = set()
        for index, charger in enumerate(self.chargers):
            if charger.charge_point_id is None:
                continue
            if charger.charge_point_id in cp_seen:
                raise ValueError(
                    f"chargers[{index}].charge_point_id: "
                    f"{charger.charge_point_id!r} is used by another charger"
                )
            cp_seen.add(charger.charge_point_id)
        owner: dict[str, str] = {}
        for index, pool in enumerate(self.pools):
            if any(p.name == pool.name for p in self.pools[:index]):
                raise ValueError(f"pools[{index}].name: duplicate pool name {pool.name!r}")
            for charger_id in pool.chargers:
                key = f"pools[{index}] ({pool.name!r}).chargers"
                if charger_id not in seen:
                    raise ValueError(f"{key}: unknown charger id {charger_id!r}")
                if charger_id in owner:
                    raise ValueError(
                        f"{key}: pools {owner[charger_id]!r} and {pool.name!r} overlap on "
                        f"charger {charger_id!r}; a charger belongs to one pool at most"
                    )
                owner[charger_id] = pool.name
        self._check_meters()
        return self

    def _check_meters(self) -> None:
        """Meter ids and MQTT topics are unique; a pool's grid names a configured meter,
        and no two pools share one (each would count the other's EVs as room)."""
        ids: set[str] = set()
        topics: set[str] = set()
        for index, meter in enumerate(self.meters):
            if meter.id in ids:
                raise ValueError(f"meters[{index}].id: duplicate meter id {meter.id!r}")
            ids.add(meter.id)
            if meter.topic is not None and meter.topic in topics:
                raise ValueError(f"meters[{index}].topic: {meter.topic!r} is used by another meter")
            if meter.topic is not None:
                topics.add(meter.topic)
            if meter.topic is not None and meter.topic.startswith(f"{self.mqtt.base_topic}/"):
                raise ValueError(
                    f"meters[{index}].topic: {meter.topic!r} is under the gateway's own base "
                    f"topic {self.mqtt.base_topic!r}; publish the meter's readings elsewhere"
                )
        used_by: dict[str, str] = {}
        for index, pool in enumerate(self.pools):
            if pool.grid is None:
                continue
            key = f"pools[{index}] ({pool.name!r}).grid.meter"
            name = pool.grid.meter
            if name not in ids:
                known = ", ".join(sorted(ids)) or "none configured"
                raise ValueError(f"{key}: unknown meter {name!r} (meters: {known})")
            if name in used_by:
                raise ValueError(
                    f"{key}: meter {name!r} already bounds pool {used_by[name]!r}; "
                    "pools sharing one fuse must be one pool"
                )
            used_by[name] = pool.name

    def meter(self, meter_id: str) -> MeterConfig:
        """The config of one meter by id (KeyError when there is none)."""
        for meter in self.meters:
            if meter.id == meter_id:
                return meter
        raise KeyError(meter_id)

    def rated_power(self, pool: PoolConfig) -> float:
        """The most a pool's chargers can draw (W): max current x phases x nominal voltage.

        Proposals above it are refused as implausible; Home Assistant's slider ends there.
        """
        voltage = self.distribution.nominal_voltage
        chargers = [self.charger(cid) for cid in pool.chargers]
        return sum(c.max_current * len(c.phases) * voltage for c in chargers)

    def effective_pools(self) -> list[PoolConfig]:
        """The configured pools, or one pool `default` with every charger."""
        if self.pools:
            return list(self.pools)
        return [PoolConfig(name=DEFAULT_POOL, chargers=[c.id for c in self.chargers])]

    def charger(self, charger_id: str) -> ChargerConfig:
        """The config of one charger by id (a dict lookup: control paths call it a lot)."""
        if not self._by_id:
            self._by_id.update((charger.id, charger) for charger in self.chargers)
        return self._by_id[charger_id]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first (it wins), then the TOML file's content passed as init kwargs.
        return (env_settings, init_settings)


