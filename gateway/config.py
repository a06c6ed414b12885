"""The gateway's configuration: one TOML file plus `EVGW_<SECTION>__<KEY>` overrides.

`load_config(path)` returns a validated `GatewayConfig` or raises `ConfigError`, whose
message names the file, the key and the reason in one plain line each; the command
line turns it into exit status 78 (EX_CONFIG). Environment variables win over the
file (pydantic-settings, nested delimiter `__`); list sections such as `chargers`
can be replaced as a whole with JSON (`EVGW_CHARGERS='[...]'`).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

EX_CONFIG = 78
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
PROFILES_DIR = Path(__file__).parent / "profiles"

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
"""An id or name that is safe in an MQTT topic level and a Home Assistant unique_id."""

ChargePointId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
"""An OCPP charge point identity: the last path segment of its websocket URL."""


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


class _Section(BaseModel):
    """A config section: unknown keys are an error, so typos are caught at start."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ExistingFile = Annotated[Path, AfterValidator(lambda path: _readable(path))]
"""A path that must name a readable file when the config is loaded, not at first use."""


def _readable(path: Path) -> Path:
    if not path.is_file():
        raise ValueError(f"file {str(path)!r} does not exist")
    if not os.access(path, os.R_OK):
        raise ValueError(f"file {str(path)!r} is not readable")
    return path


class TlsConfig(_Section):
    ca_file: ExistingFile | None = None
    cert_file: ExistingFile | None = None
    key_file: ExistingFile | None = None


class MqttConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    base_topic: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_/-]{1,128}$")] = "ev-gateway"
    username: str | None = None
    password: str | None = Field(None, repr=False)
    password_file: ExistingFile | None = None
    tls: TlsConfig | None = None
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    client_id: str | None = None
    keepalive: int = Field(30, ge=5, le=3600)
    # Bounded queues: received messages waiting to be read, and each outgoing lane.
    max_queued_incoming: int = Field(1000, ge=10, le=1_000_000)
    max_queued_outgoing: int = Field(10_000, ge=10, le=1_000_000)
    # 0: every charger's state at every tick; else on change plus this heartbeat (s).
    state_heartbeat: float = Field(0.0, ge=0, le=3600)

    @model_validator(mode="after")
    def _one_password_source(self) -> MqttConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give either password or password_file, not both")
        return self

    def resolved_password(self) -> str | None:
        """The password, read from `password_file` when one is given."""
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").strip()
        return self.password


class PowerConfig(_Section):
    resampling_period: float = Field(1.0, gt=0, le=60)
    max_data_age: float = Field(10.0, gt=0, le=3600)
    max_proposal_age: float = Field(60.0, gt=0, le=86400)
    # Longest `expires_in` a proposal may give (s); null in a proposal means "lasting".
    max_expires_in: float = Field(86400.0, gt=0, le=31_536_000)


class DistributionConfig(_Section):
    min_current: float = Field(6.0, ge=6.0, le=32.0)
    initial_current: float = Field(10.0, ge=6.0, le=80.0)
    nominal_voltage: float = Field(230.0, gt=100, le=400)
    min_on_time: float = Field(60.0, ge=0, le=3600)
    min_off_time: float = Field(30.0, ge=0, le=3600)
    ramp_up_rate: float = Field(2.0, gt=0, le=80, description="A per second per charger")


class SerialConfig(_Section):
    """Modbus RTU over RS-485: one serial line shared by every charger on it."""

    port: str
    baudrate: int = Field(19200, ge=1200, le=921600)
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    delay: float = Field(0.0, ge=0, le=5)  # s between requests (evcc: 0.1 for Heidelberg)


class SimulatedEvConfig(_Section):
    """The EV behind a simulated charger (adapter = "simulated")."""

    plugged: bool = True
    phases: Literal[1, 3] = 3
    max_current: float = Field(16.0, ge=0, le=80)


class ChargerConfig(_Section):
    id: Name
    adapter: Literal["modbus", "ocpp", "simulated"]
    profile: str | None = None
    host: str | None = None
    port: int = Field(502, ge=1, le=65535)
    unit_id: int | None = Field(None, ge=0, le=255)
    serial: SerialConfig | None = None
    poll_interval: float = Field(1.0, gt=0, le=3600)
    timeout: float = Field(1.0, gt=0, le=60)
    max_current: float = Field(16.0, gt=0, le=80)
    # A the charger falls back to when the gateway goes silent (0 or 6-80), written where
    # the profile marks that register writable (modbus only)
    safe_current: float | None = Field(None, ge=0, le=80)
    phases: list[int] = Field(default_factory=lambda: [1, 2, 3], min_length=1, max_length=3)
    ev_phases: Literal[1, 2, 3] | None = None
    charge_point_id: ChargePointId | None = None
    connector_id: int = Field(1, ge=1, le=16)
    simulated_ev: SimulatedEvConfig = Field(default_factory=SimulatedEvConfig)

    @field_validator("phases")
    @classmethod
    def _phases_are_grid_phases(cls, phases: list[int]) -> list[int]:
        if any(p not in (1, 2, 3) for p in phases):
            raise ValueError(f"each entry must be a grid phase 1, 2 or 3, got {phases}")
        if len(set(phases)) != len(phases):
            raise ValueError(f"a grid phase appears twice in {phases}")
        return phases

    @model_validator(mode="after")
    def _adapter_needs(self) -> ChargerConfig:
        if self.adapter == "modbus":
            if self.profile is None:
                raise ValueError('adapter "modbus" needs a profile (see `ev-gateway profiles`)')
            if self.host is None and self.serial is None:
                raise ValueError('adapter "modbus" needs host (TCP) or serial (RTU)')
        if self.profile is not None and not (PROFILES_DIR / f"{self.profile}.toml").is_file():
            known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.toml")))
            raise ValueError(f"unknown profile {self.profile!r}; known profiles: {known}")
        if self.safe_current is not None and 0 < self.safe_current < 6:
            raise ValueError(f"safe_current must be 0 or 6-80 A, got {self.safe_current:g}")
        if self.safe_current is not None and self.safe_current > self.max_current:
            raise ValueError(
                f"safe_current {self.safe_current:g} A is above max_current {self.max_current:g} A"
            )
        if self.adapter == "ocpp" and self.charge_point_id is None:
            raise ValueError('adapter "ocpp" needs charge_point_id')
        return self


class OcppConfig(_Section):
    host: str = "0.0.0.0"
    port: int = Field(9000, ge=0, le=65535)
    basic_auth: dict[str, str] = Field(default_factory=dict, repr=False)
    cert_file: ExistingFile | None = None
    key_file: ExistingFile | None = None
    heartbeat_interval: int = Field(60, ge=10, le=86400)
    meter_value_interval: int = Field(10, ge=1, le=3600)
    response_timeout: float = Field(10.0, gt=0, le=120)
    authorize_id_tags: list[str] | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> OcppConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("TLS needs both cert_file and key_file (or neither)")
        return self


class HomeAssistantConfig(_Section):
    enabled: bool = True
    discovery_prefix: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_/-]{1,64}$")] = (
        "homeassistant"
    )


class StateConfig(_Section):
    """Where the gateway keeps what must survive a restart (see gateway/state_file.py)."""

    # None: $STATE_DIRECTORY (set by systemd's StateDirectory=), else nothing is kept
    directory: Path | None = None

    def resolved_directory(self) -> Path | None:
        """The configured directory, else systemd's `$STATE_DIRECTORY`, else None."""
        if self.directory is not None:
            return self.directory
        env = os.environ.get("STATE_DIRECTORY")
        return Path(env.split(":")[0]) if env else None


class PoolConfig(_Section):
    name: Name
    chargers: list[Name] = Field(min_length=1)
    phase_limit: float | None = Field(None, gt=0, le=4000)
    default_power: float | None = Field(None, ge=0)


DEFAULT_POOL = "default"


class GatewayConfig(BaseSettings):
    """The whole configuration, as API.md describes it."""

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
        return self

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


def _format_location(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    """`('chargers', 0, 'max_current')` -> `chargers[0] (id "bay-1").max_current`."""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node) and isinstance(node[item], dict):
                entry_id = node[item].get("id") or node[item].get("name")
                if entry_id is not None:
                    label += f" ({entry_id!r})"
            parts.append(label)
        else:
            parts.append(("." if parts else "") + item)
        node = node[item] if _indexable(node, item) else None
    return "".join(parts) or "(top level)"


def _indexable(node: Any, item: int | str) -> bool:
    if isinstance(node, dict):
        return item in node
    return isinstance(node, list) and isinstance(item, int) and item < len(node)


def _env_name(loc: tuple[int | str, ...]) -> str | None:
    """The environment variable that would set this key, when one is set."""
    keys = [str(k) for k in loc if isinstance(k, str)]
    for depth in range(len(keys), 0, -1):
        name = "EVGW_" + "__".join(k.upper() for k in keys[:depth])
        if name in os.environ:
            return name
    return None


def _describe(error: ValidationError, source: str, data: dict[str, Any]) -> str:
    lines = []
    for item in error.errors():
        loc = tuple(k for k in item["loc"] if k not in ("function-after", "function-before"))
        key = _format_location(loc, data)
        reason = item["msg"].removeprefix("Value error, ")
        if not loc and ": " in reason:
            key, _, reason = reason.partition(": ")
        if item["type"] == "extra_forbidden":
            reason = "unknown key (check its spelling and section)"
        env = _env_name(loc)
        where = f"{source} (from {env})" if env else source
        lines.append(f"{where}: {key}: {reason}")
    return "\n".join(lines)


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file; syntax errors become `ConfigError` naming the file."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except PermissionError as exc:
        raise ConfigError(f"{path}: cannot read config file (permission denied)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def config_from_dict(data: dict[str, Any], source: str = "<config>") -> GatewayConfig:
    """Validate a config given as plain data (the TOML file's content)."""
    try:
        return GatewayConfig(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source, data)) from None


def resolve_config_path(path: str | Path | None) -> Path:
    """The config path from the argument, else `EVGW_CONFIG`."""
    if path is not None:
        return Path(path)
    env = os.environ.get("EVGW_CONFIG")
    if env:
        return Path(env)
    raise ConfigError("no config file given: use --config PATH or set EVGW_CONFIG")


def load_config(path: str | Path | None) -> GatewayConfig:
    """Load, override from the environment, and validate the configuration."""
    resolved = resolve_config_path(path)
    return config_from_dict(read_toml(resolved), str(resolved))


def redacted(config: GatewayConfig) -> dict[str, Any]:
    """The resolved config as plain data, with secrets replaced by `***`."""
    data = config.model_dump(mode="json")
    data["pools"] = [p.model_dump(mode="json") for p in config.effective_pools()]
    if data["mqtt"].get("password"):
        data["mqtt"]["password"] = "***"
    data["ocpp"]["basic_auth"] = {k: "***" for k in data["ocpp"]["basic_auth"]}
    return data
