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

from gateway.config.base import (
    CREDENTIALS_ENV,
    METER_PROFILES_DIR,
    NAME_PATTERN,
    PROFILES_DIR,
    ChargePointId,
    ConfigError,
    ExistingFile,
    Name,
    SerialConfig,
    credential_path,
)
from gateway.config.gateway import DEFAULT_POOL, GatewayConfig
from gateway.config.loading import (
    config_from_dict,
    load_config,
    read_toml,
    redacted,
    resolve_config_path,
)
from gateway.config.meters import GridConfig, MeterConfig
from gateway.config.sections import (
    ChargerConfig,
    DistributionConfig,
    HomeAssistantConfig,
    MqttConfig,
    OcppConfig,
    PoolConfig,
    PowerConfig,
    SimulatedEvConfig,
    StateConfig,
    TlsConfig,
)
from gateway.errors import EX_CONFIG

__all__ = [
    "CREDENTIALS_ENV",
    "DEFAULT_POOL",
    "EX_CONFIG",
    "METER_PROFILES_DIR",
    "NAME_PATTERN",
    "PROFILES_DIR",
    "ChargePointId",
    "ChargerConfig",
    "ConfigError",
    "DistributionConfig",
    "ExistingFile",
    "GatewayConfig",
    "GridConfig",
    "HomeAssistantConfig",
    "MeterConfig",
    "MqttConfig",
    "Name",
    "OcppConfig",
    "PoolConfig",
    "PowerConfig",
    "SerialConfig",
    "SimulatedEvConfig",
    "StateConfig",
    "TlsConfig",
    "config_from_dict",
    "credential_path",
    "load_config",
    "read_toml",
    "redacted",
    "resolve_config_path",
]
