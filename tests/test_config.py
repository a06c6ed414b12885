"""Config: defaults, env overrides, and invalid files refused with exit status 78."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.adapters.factory import _register_map
from gateway.config import ConfigError, load_config

VALID = """
[mqtt]
host = "127.0.0.1"

[[chargers]]
id = "bay-1"
adapter = "simulated"
max_current = 16.0
phases = [2, 3, 1]

[[chargers]]
id = "bay-2"
adapter = "simulated"
"""


def run_check(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check-config", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def test_valid_config_resolves_defaults_and_default_pool(tmp_path: Path) -> None:
    result = run_check(write(tmp_path, VALID))
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert resolved["mqtt"]["port"] == 1883
    assert resolved["mqtt"]["base_topic"] == "ev-gateway"
    assert resolved["power"] == {
        "resampling_period": 1.0,
        "max_data_age": 10.0,
        "max_proposal_age": 60.0,
        "max_expires_in": 86400.0,
    }
    assert resolved["distribution"]["min_current"] == 6.0
    assert resolved["chargers"][0]["phases"] == [2, 3, 1]
    assert resolved["pools"] == [
        {
            "name": "default",
            "chargers": ["bay-1", "bay-2"],
            "phase_limit": None,
            "default_power": None,
            "grid": None,
        }
    ]


def test_environment_overrides_a_key(tmp_path: Path) -> None:
    result = run_check(
        write(tmp_path, VALID), {"EVGW_MQTT__PORT": "1999", "EVGW_POWER__MAX_DATA_AGE": "3"}
    )
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert resolved["mqtt"]["port"] == 1999
    assert resolved["mqtt"]["host"] == "127.0.0.1"
    assert resolved["power"]["max_data_age"] == 3.0


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVGW_CONFIG", str(write(tmp_path, VALID)))
    assert load_config(None).chargers[0].id == "bay-1"


def test_secrets_are_redacted_and_read_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    text = VALID.replace('host = "127.0.0.1"', f'host = "h"\npassword_file = "{secret}"')
    config = load_config(write(tmp_path, text))
    assert config.mqtt.resolved_password() == "hunter2"
    result = run_check(write(tmp_path, VALID.replace('host = "127.0.0.1"', 'password = "s3"')))
    assert "s3" not in result.stdout and '"***"' in result.stdout


INVALID = [
    ("wrong type", VALID.replace("max_current = 16.0", 'max_current = "lots"'), "max_current"),
    ("unknown key", VALID.replace('host = "127.0.0.1"', 'hots = "x"'), "mqtt.hots"),
    ("unknown charger key", VALID + 'colour = "red"\n', "colour"),
    ("duplicate id", VALID.replace('id = "bay-2"', 'id = "bay-1"'), "chargers[1].id"),
    (
        "overlapping pools",
        VALID
        + '[[pools]]\nname = "a"\nchargers = ["bay-1"]\n'
        + '[[pools]]\nname = "b"\nchargers = ["bay-1", "bay-2"]\n',
        "pools[1] ('b').chargers",
    ),
    (
        "unknown charger in pool",
        VALID + '[[pools]]\nname = "a"\nchargers = ["bay-9"]\n',
        "pools[0] ('a').chargers",
    ),
    ("bad id characters", VALID.replace('id = "bay-2"', 'id = "bay 2/x"'), "chargers[1]"),
    ("bad phases", VALID.replace("phases = [2, 3, 1]", "phases = [1, 4]"), "phases"),
    ("not TOML", "[mqtt\nhost=", "not valid TOML"),
    (
        "missing password file",
        VALID.replace('host = "127.0.0.1"', 'password_file = "/nonexistent/pw"'),
        "mqtt.password_file",
    ),
    (
        "modbus without profile",
        VALID.replace('id = "bay-2"\nadapter = "simulated"', 'id = "bay-2"\nadapter = "modbus"'),
        "chargers[1] ('bay-2')",
    ),
]


@pytest.mark.parametrize(("name", "text", "key"), INVALID, ids=[i[0] for i in INVALID])
def test_invalid_config_exits_78_naming_file_and_key(
    tmp_path: Path, name: str, text: str, key: str
) -> None:
    path = write(tmp_path, text)
    result = run_check(path)
    assert result.returncode == 78, (name, result.stdout, result.stderr)
    assert str(path) in result.stderr
    assert key in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_invalid_environment_override_names_the_variable(tmp_path: Path) -> None:
    result = run_check(write(tmp_path, VALID), {"EVGW_MQTT__PORT": "not-a-port"})
    assert result.returncode == 78
    assert "EVGW_MQTT__PORT" in result.stderr and "mqtt.port" in result.stderr


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("safe_current", "error"),
    [(None, None), (0.0, None), (10.0, None), (3.0, "0 or 6-80 A"), (20.0, "above max_current")],
)
def test_charger_safe_current(
    tmp_path: Path, safe_current: float | None, error: str | None
) -> None:
    extra = "" if safe_current is None else f"safe_current = {safe_current}\n"
    path = write(tmp_path, VALID.replace("max_current = 16.0\n", f"max_current = 16.0\n{extra}"))
    if error is not None:
        with pytest.raises(ConfigError, match=error):
            load_config(path)
        return
    config = load_config(path)
    assert config.chargers[0].safe_current == safe_current
    assert _register_map(config.chargers[0], config, time.monotonic)["safe_current"] == safe_current
