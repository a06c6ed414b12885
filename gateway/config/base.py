"""Shared pieces of the configuration model: names, files, credentials, errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from gateway.errors import EX_CONFIG, UserError

CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
PROFILES_DIR = Path(__file__).parents[1] / "profiles"
METER_PROFILES_DIR = Path(__file__).parents[1] / "meters" / "profiles"

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


ExistingFile = Annotated[Path, AfterValidator(lambda path: readable(credential_path(path)))]
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


def readable(path: Path) -> Path:
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


class SerialConfig(_Section):
    """Modbus RTU over RS-485: one serial line shared by every charger on it."""

    port: str
    baudrate: int = Field(19200, ge=1200, le=921600)
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    delay: float = Field(0.0, ge=0, le=5)  # s between requests (evcc: 0.1 for Heidelberg)
