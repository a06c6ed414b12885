"""The gateway's configuration: one TOML file plus `EVGW_<SECTION>__<KEY>` overrides.

`load_config(path)` returns a validated `GatewayConfig` or raises `ConfigError`, whose
message names the file, the key and the reason in one plain line each; the command
line turns it into exit status 78 (EX_CONFIG). Environment variables win over the
file (pydantic-settings, nested delimiter `__`); list sections such as `chargers`
can be replaced as a whole with JSON (`EVGW_CHARGERS='[...]'`).

Secrets (the MQTT password, OCPP passwords, TLS keys) live in files of their own. A
relative file name such as `password_file = "mqtt-password"` names a systemd
credential: it is read from `$CREDENTIALS_DIRECTORY` (where `LoadCredential=` puts
it) when that is set, else from the working directory. Absolute paths are used as is.
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

from gateway.adapters.modbus.profile import load_profile
from gateway.errors import EX_CONFIG, UserError

__all__ = ["EX_CONFIG", "ConfigError", "GatewayConfig", "load_config", "redacted"]

CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
PROFILES_DIR = Path(__file__).parent / "profiles"
METER_PROFILES_DIR = Path(__file__).parent / "meters" / "profiles"

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
"""An id or name that is safe in an MQTT topic level and a Home Assistant unique_id."""

ChargePointId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
"""An OCPP charge point identity: the last path segment of its websocket URL."""


class ConfigError(UserError):
    """The configuration cannot be used; the message says where and why (exit 78)."""

    status = EX_CONFIG


class _Section(BaseModel):
    """A config section: unknown keys are an error, so typos are caught at start."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ExistingFile = Annotated[Path, AfterValidator(lambda path: _readable(credential_path(path)))]
"""A readable file, checked when the config is loaded; a relative name is a credential."""


def credential_path(path: Path, environ: dict[str, str] | None = None) -> Path:
    """Where a configured secret file is: relative names in `$CREDENTIALS_DIRECTORY`.

    systemd's `LoadCredential=NAME:/etc/ev-gateway/credentials/NAME` copies a root-only
    file to a directory only the service can read and names it in that variable.
    Without it (a shell, a test), a relative name is relative to the working directory.
    """
    env = os.environ if environ is None else environ
    directory = env.get(CREDENTIALS_ENV)
    if path.is_absolute() or not directory:
        return path
    return Path(directory) / path


def _readable(path: Path) -> Path:
    if not path.is_file():
        where = os.environ.get(CREDENTIALS_ENV)
        if where and path.parent == Path(where):
            raise ValueError(
                f"credential {path.name!r} was not passed to the service (no such file in "
                f"${CREDENTIALS_ENV}); add LoadCredential={path.name}:/etc/ev-gateway/"
                f"credentials/{path.name} to the unit"
            )
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
    # The fairness/pauses trade-off (s): shortest slot before an EV yields its place to a
    # waiting EV, and how much longer that EV must have waited over the session. Lower
    # it (e.g. 900) for turns every quarter hour at the price of many more pauses.
    rotation_period: float = Field(7200.0, ge=60, le=86400)
    # s an EV may draw nothing after being (re)started before a wake-up toggle is tried
    resume_timeout: float = Field(60.0, ge=5, le=3600)


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
    phases: Literal[1, 2, 3] = 3
    max_current: float = Field(16.0, ge=0, le=80)


class ChargerConfig(_Section):
    id: Name
    adapter: Literal["modbus", "ocpp", "simulated", "go-e"]
    profile: str | None = None
    host: str | None = None
    port: int = Field(502, ge=1, le=65535)
    unit_id: int | None = Field(None, ge=0, le=255)
    serial: SerialConfig | None = None
    poll_interval: float = Field(1.0, gt=0, le=3600)
    timeout: float = Field(1.0, gt=0, le=60)
    max_current: float = Field(16.0, gt=0, le=80)
    # A the charger falls back to when the gateway goes silent (0 or 6-80): modbus writes it
    # where the profile marks that register writable; ocpp installs it as the fail-safe
    # charging profile under every limit (None there means 0 A)
    safe_current: float | None = Field(None, ge=0, le=80)
    phases: list[int] = Field(default_factory=lambda: [1, 2, 3], min_length=1, max_length=3)
    ev_phases: Literal[1, 2, 3] | None = None
    charge_point_id: ChargePointId | None = None
    connector_id: int = Field(1, ge=1, le=16)
    simulated_ev: SimulatedEvConfig = Field(default_factory=SimulatedEvConfig)

    @model_validator(mode="before")
    @classmethod
    def _goe_port(cls, data: Any) -> Any:
        """A go-e Charger's HTTP API listens on port 80 unless the config says otherwise."""
        if isinstance(data, dict) and data.get("adapter") == "go-e" and "port" not in data:
            return {**data, "port": 80}
        return data

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
        if self.adapter == "go-e" and self.host is None:
            raise ValueError(
                'adapter "go-e" needs host (the charger\'s address; port 80 unless set)'
            )
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
    # a TOML file of `"charge-point-id" = "password"` lines, merged into basic_auth
    basic_auth_file: ExistingFile | None = None
    cert_file: ExistingFile | None = None
    key_file: ExistingFile | None = None
    heartbeat_interval: int = Field(60, ge=10, le=86400)
    meter_value_interval: int = Field(10, ge=1, le=3600)
    response_timeout: float = Field(10.0, gt=0, le=120)
    authorize_id_tags: list[str] | None = None
    # Charge points that may connect without Basic auth: true (all), false, or a list of ids
    allow_unauthenticated: bool | list[ChargePointId] = False
    max_message_rate: float = Field(50.0, gt=0, le=10000)  # frames/s per connection, averaged
    message_burst: int = Field(200, ge=1, le=100000)  # frames a connection may send at once
    max_frame_bytes: int = Field(65536, ge=1024, le=16 * 1024 * 1024)
    # s a limit stays in force on a charge point that hears nothing more from the gateway;
    # refreshed every third of it
    limit_validity: float = Field(180.0, ge=30, le=86400)

    @model_validator(mode="before")
    @classmethod
    def _passwords_from_file(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("basic_auth_file"), str):
            return data
        path = _readable(credential_path(Path(data["basic_auth_file"])))
        try:
            passwords = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"basic_auth_file {str(path)!r}: not a TOML table: {exc}") from None
        if not all(isinstance(v, str) for v in passwords.values()):
            raise ValueError(
                f'basic_auth_file {str(path)!r}: each line must be "charge-point-id" = "password"'
            )
        inline = data.get("basic_auth") or {}
        both = sorted(set(inline) & set(passwords)) if isinstance(inline, dict) else []
        if both:
            raise ValueError(f"basic_auth and basic_auth_file both give a password for {both}")
        return {**data, "basic_auth": {**passwords, **(inline if isinstance(inline, dict) else {})}}

    @model_validator(mode="after")
    def _tls_pair(self) -> OcppConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("TLS needs both cert_file and key_file (or neither)")
        return self


class HomeAssistantConfig(_Section):
    """Discovery for Home Assistant, and the priority of its "Power limit" proposals."""

    enabled: bool = True
    discovery_prefix: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_/-]{1,64}$")] = (
        "homeassistant"
    )
    priority: int = Field(100, ge=-(2**31), le=2**31 - 1)


class MeterConfig(_Section):
    """A grid meter: Modbus (a meter profile, TCP or RTU) or an MQTT topic."""

    id: Name
    adapter: Literal["modbus", "mqtt"]
    profile: str | None = None
    host: str | None = None
    port: int = Field(502, ge=1, le=65535)
    unit_id: int | None = Field(None, ge=0, le=255)
    serial: SerialConfig | None = None
    poll_interval: float = Field(1.0, gt=0, le=3600)
    timeout: float = Field(1.0, gt=0, le=60)
    topic: str | None = Field(None, min_length=1, max_length=1024)
    max_age: float = Field(5.0, gt=0, le=3600)  # s; older readings: the pool falls back
    phases: list[int] = Field(default_factory=lambda: [1, 2, 3], min_length=3, max_length=3)

    @field_validator("phases")
    @classmethod
    def _three_grid_phases(cls, phases: list[int]) -> list[int]:
        if sorted(phases) != [1, 2, 3]:
            raise ValueError(f"must list the grid phases 1, 2, 3 once each, got {phases}")
        return phases

    @field_validator("topic")
    @classmethod
    def _one_topic(cls, topic: str | None) -> str | None:
        if topic is not None and (set(topic) & {"+", "#", "\0"} or topic.startswith("$")):
            raise ValueError(f"{topic!r} must be one topic: no wildcards (+ #), no leading $")
        return topic

    @model_validator(mode="after")
    def _adapter_needs(self) -> MeterConfig:
        if self.adapter == "modbus":
            if self.profile is None:
                known = ", ".join(_meter_profiles())
                raise ValueError(f'adapter "modbus" needs a profile (one of: {known})')
            if self.host is None and self.serial is None:
                raise ValueError('adapter "modbus" needs host (TCP) or serial (RTU)')
            if self.host is not None and self.serial is not None:
                raise ValueError("give host (TCP) or serial (RTU), not both")
            if self.topic is not None:
                raise ValueError('topic is for adapter "mqtt"; a modbus meter is polled')
            if not (METER_PROFILES_DIR / f"{self.profile}.toml").is_file():
                known = ", ".join(_meter_profiles())
                raise ValueError(f"unknown meter profile {self.profile!r}; known: {known}")
            if self.max_age <= self.poll_interval:
                raise ValueError(
                    f"max_age {self.max_age:g} s must be longer than poll_interval "
                    f"{self.poll_interval:g} s, or every reading is stale"
                )
        else:
            if self.topic is None:
                raise ValueError('adapter "mqtt" needs the topic the meter publishes on')
            given = [k for k in _MODBUS_ONLY if k in self.model_fields_set]
            if given:
                raise ValueError(f'{", ".join(given)}: only for adapter "modbus"')
        return self


_MODBUS_ONLY = ("profile", "host", "port", "unit_id", "serial", "poll_interval", "timeout")
"""Meter keys that mean nothing to an MQTT meter: giving one is a mistake to point out."""


def _meter_profiles() -> list[str]:
    return sorted(p.stem for p in METER_PROFILES_DIR.glob("*.toml"))


class GridConfig(_Section):
    """A pool's grid connection: the meter at the main fuse and what to keep clear of it.

    `fuse` and `margin` in A per phase; `fallback_current` the A per phase for all the
    pool's EVs together while the meter is stale (default: one EV at its minimum current
    when `fuse - margin` allows it, else 0).
    """

    meter: Name
    fuse: float = Field(gt=0, le=4000)
    margin: float = Field(1.0, ge=0, le=4000)
    fallback_current: float | None = Field(None, ge=0, le=4000)

    @model_validator(mode="after")
    def _room_left(self) -> GridConfig:
        if self.margin >= self.fuse:
            raise ValueError(
                f"fuse {self.fuse:g} A must be above margin {self.margin:g} A, "
                "or the EVs never get any current"
            )
        if self.fallback_current is not None and self.fallback_current > self.fuse - self.margin:
            raise ValueError(
                f"fallback_current {self.fallback_current:g} A is above fuse - margin "
                f"({self.fuse - self.margin:g} A)"
            )
        return self


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
    grid: GridConfig | None = None  # a grid meter bounds the pool per phase


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
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: is a directory, not a config file") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 text ({exc.reason})") from exc
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
    for charger in data["chargers"]:
        if charger["unit_id"] is None and charger["adapter"] == "modbus":
            charger["unit_id"] = load_profile(charger["profile"]).unit_id
    return data
