"""The configuration sections: MQTT, power, distribution, chargers, OCPP, Home
Assistant, state and pools."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from gateway.adapters.modbus.profile import load_profile
from gateway.config.base import (
    PROFILES_DIR,
    ChargePointId,
    ExistingFile,
    Name,
    SerialConfig,
    _Section,
    credential_path,
    readable,
)
from gateway.config.meters import GridConfig


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
    # The fairness/pauses trade-off (s): shortest slot before an EV yields its place to a
    # waiting EV, and how much longer that EV must have waited over the session. Lower
    # it (e.g. 900) for turns every quarter hour at the price of many more pauses.
    rotation_period: float = Field(7200.0, ge=60, le=86400)
    # s an EV may draw nothing after being (re)started before a wake-up toggle is tried
    resume_timeout: float = Field(60.0, ge=5, le=3600)
    # least s between two 1-phase/3-phase switches of one charger (each is a pause)
    phase_switch_interval: float = Field(300.0, ge=60, le=86400)
    # A above the minimum a 1-phase EV must be able to get on 3 phases to switch back
    phase_switch_hysteresis: float = Field(1.0, ge=0, le=16)
    # s between two distributions while none of their inputs changed (target, limits,
    # each charger's status, plug and measured current to 0.1 A, its limit); 0: every tick
    recheck_interval: float = Field(5.0, ge=0, le=60)


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
    # switch between 1 and 3 phases when that lets the EV charge (profiles with [phase_switch])
    phase_switching: bool = False

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
        if self.phase_switching:
            self._check_phase_switching()
        return self

    def _check_phase_switching(self) -> None:
        """Only a Modbus charger whose profile has a phase switch register, wired to
        three phases, may switch."""
        if self.adapter != "modbus" or self.profile is None:
            raise ValueError(f'phase_switching needs adapter "modbus", not {self.adapter!r}')
        if load_profile(self.profile).phase_switch is None:
            raise ValueError(
                f"phase_switching: the profile {self.profile!r} has no phase switch register"
            )
        if len(self.phases) != 3:
            raise ValueError("phase_switching needs a charger wired to three phases")


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
        path = readable(credential_path(Path(data["basic_auth_file"])))
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


