"""The real `ev-gateway` command with bad arguments: one line, no traceback, and the
exit status README's "Exit statuses" table documents."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "example.toml"


def cli(*args: str, timeout: float = 60, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVGW_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
        **kwargs,  # type: ignore[call-overload]
    )  # type: ignore[no-any-return]


def documented_statuses() -> dict[int, str]:
    """status -> meaning, from README's table."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Exit statuses") :]
    section = section[: section.index("\n## ", 1)] if "\n## " in section[1:] else section
    return {int(m[1]): m[2] for m in re.finditer(r"^\| (\d+) \| ([^|]+)\|", section, re.M)}


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def ocpp_config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "ocpp.toml"
    path.write_text(
        f"""
[mqtt]
port = {free_port()}
[[chargers]]
id = "cp-1"
adapter = "ocpp"
charge_point_id = "CP-1"
[ocpp]
host = "127.0.0.1"
port = {port}
"""
    )
    return path


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: int) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == status, (result.returncode, result.stderr)
    assert status in documented_statuses()
    lines = [
        line
        for line in result.stderr.splitlines()
        if not line.startswith(("INFO ", "DEBUG ", "WARNING "))  # log lines of a run
    ]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ev-gateway"), lines


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["bogus"], 2),
        ([], 2),
        (["run", "--bogus"], 2),
        (["simulate", "--profile", "genric"], 2),
        (["simulate", "--ev-phases", "4"], 2),
        (["simulate", "--count", "0"], 2),
        (["simulate", "--ev-current", "-3"], 2),
        (["simulate", "--port", "notanumber"], 2),
        (["check-config", "config/example.toml", "--config", "other.toml"], 2),
        (["check-config"], 78),  # no path and no EVGW_CONFIG
        (["check-config", "config"], 78),  # a directory
        (["check-config", "/nonexistent/gateway.toml"], 78),
        (["check-config", "--config", "README.md"], 78),  # not TOML
        (["run", "--config", "/nonexistent/gateway.toml"], 78),
        (["run"], 78),
        (["demo", "--config", "config"], 78),
        (["simulate", "--config", "/nonexistent/gateway.toml"], 78),
        (["demo", "--duration", "soon"], 2),
    ],
)
def test_bad_arguments_are_one_line_with_the_documented_status(
    args: list[str], status: int
) -> None:
    assert_one_line_error(cli(*args), status)


def test_an_unreadable_config_is_one_line(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root reads anything: make it unreadable by being something else
        path = tmp_path / "fifo-free.toml"
        path.write_bytes(b"\xff\xfe not utf-8")
    else:
        path = tmp_path / "secret.toml"
        path.write_text(EXAMPLE.read_text())
        path.chmod(0)
    assert_one_line_error(cli("check-config", str(path)), 78)


def test_simulate_on_a_busy_port_is_one_line(busy_port: int) -> None:
    result = cli("simulate", "--port", str(busy_port))
    assert_one_line_error(result, 69)
    assert f"127.0.0.1:{busy_port}" in result.stderr


def test_simulate_config_with_a_busy_port_is_one_line(tmp_path: Path, busy_port: int) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(EXAMPLE.read_text().replace("port = 5021", f"port = {busy_port}"))
    result = cli("simulate", "--config", str(config))
    assert_one_line_error(result, 69)


def test_ocpp_port_in_use_is_one_line_not_a_restart_loop(tmp_path: Path, busy_port: int) -> None:
    result = cli("run", "--config", str(ocpp_config(tmp_path, busy_port)))
    assert_one_line_error(result, 69)
    assert str(busy_port) in result.stderr
    assert "address already in use" in result.stderr


def test_a_config_without_modbus_tcp_chargers_has_nothing_to_simulate(tmp_path: Path) -> None:
    result = cli("simulate", "--config", str(ocpp_config(tmp_path, 0)))
    assert_one_line_error(result, 78)
    assert "nothing to serve" in result.stderr


def test_simulate_config_needs_a_port_per_charger(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(EXAMPLE.read_text().replace("port = 5021", "port = 5020"))
    result = cli("simulate", "--config", str(config))
    assert_one_line_error(result, 78)
    assert "bay-1 and bay-2 both use port 5020" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["check-config", str(EXAMPLE)],
        ["check-config", "--config", str(EXAMPLE)],
        ["profiles"],
        ["--help"],
        ["simulate", "--help"],
    ],
)
def test_a_closed_pipe_ends_quietly(args: list[str]) -> None:
    """`check-config x | head -1`: the reader is gone before we write."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVGW_")}
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "wb") as stdout:
        result = subprocess.run(
            [sys.executable, "-m", "gateway.cli", *args],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
            timeout=60,
        )
    assert "Traceback" not in result.stderr, result.stderr
    assert "Exception ignored" not in result.stderr, result.stderr
    assert result.returncode in (0, 141)
    if args[0] == "check-config":
        assert result.returncode == 141  # the JSON was cut off
        assert 141 in documented_statuses()


def test_check_config_takes_the_positional_or_config_and_resolves_unit_id() -> None:
    positional = cli("check-config", str(EXAMPLE))
    option = cli("check-config", "--config", str(EXAMPLE))
    same = cli("check-config", str(EXAMPLE), "--config", str(EXAMPLE))
    assert positional.returncode == option.returncode == same.returncode == 0, option.stderr
    assert positional.stdout == option.stdout == same.stdout
    assert '"unit_id": null' not in positional.stdout
    # bay-2 and bay-3 give no unit_id: the Alfen and generic profiles' default is 1
    assert positional.stdout.count('"unit_id": 1') == 3


def test_help_describes_the_simulated_ev() -> None:
    result = cli("simulate", "--help")
    assert result.returncode == 0
    for option in ("--config", "--ev-phases", "--ev-current", "--unplugged", "--profile"):
        assert option in result.stdout
    assert "wired" in result.stdout


def test_check_config_states_the_proposal_rules() -> None:
    result = cli("check-config", "config/example.toml")
    assert result.returncode == 0, result.stderr
    assert "expires_in up to 86400 s or null (lasting)" in result.stderr
    rated = [line for line in result.stderr.splitlines() if "rated maximum" in line]
    assert rated and all(line.startswith("ev-gateway: pool ") for line in rated)
    assert "Traceback" not in result.stderr
