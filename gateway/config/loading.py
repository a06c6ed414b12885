"""Reading the TOML file, applying the environment, and one line per problem."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import (
    ValidationError,
)

from gateway.adapters.modbus.profile import load_profile
from gateway.config.base import ConfigError
from gateway.config.gateway import GatewayConfig


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
