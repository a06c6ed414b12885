"""README "Running it for real", followed as written in a temporary prefix.

The shell blocks marked `<!-- readme-test: NAME -->` run with bash, their absolute
paths moved under a prefix; `systemctl` lines are what systemd would do, so they are
replaced by what can be checked without it: `systemd-analyze verify` of the installed
unit with its drop-ins, and the daemon started the way the unit starts it: as a user
that owns nothing (a uid with no account, like `DynamicUser=yes`), with the
credentials copied to a directory only that user can read (`LoadCredential=`), a
notify socket (`Type=notify`), against a mosquitto that requires the password.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.conftest import Mosquitto, free_port

REPO = Path(__file__).resolve().parent.parent
SERVICE_UID = 61234  # no account, as systemd's DynamicUser= allocates
SYSTEM_PATHS = ("/opt/ev-gateway", "/etc/ev-gateway", "/etc/systemd/system", "/var/lib")
BLOCK = re.compile(r"<!-- readme-test: (\w+) -->\s*```sh\n(.*?)```", re.S)
PASSWORD = "s3cret pass"  # a space: the credential is taken as is, not word-split


def readme_blocks() -> dict[str, list[str]]:
    text = (REPO / "README.md").read_text()
    return {name: body.strip().splitlines() for name, body in BLOCK.findall(text)}


def under(prefix: Path, text: str) -> str:
    """The text with the system paths moved under prefix."""
    for path in SYSTEM_PATHS:
        text = text.replace(path, f"{prefix}{path}")
    return text


def run_block(lines: list[str], prefix: Path, env: dict[str, str]) -> list[str]:
    """Run a README block (not its systemctl/journalctl lines, returned instead)."""
    skipped = [line for line in lines if line.split()[0] in ("systemctl", "journalctl")]
    script = "\n".join(under(prefix, line) for line in lines if line not in skipped)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"{script}\n{result.stdout}\n{result.stderr}"
    return skipped


def unit_with_dropins(prefix: Path) -> str:
    """The installed unit and its drop-ins as one text (systemd reads them so)."""
    unit_dir = prefix / "etc/systemd/system"
    parts = [(unit_dir / "ev-gateway.service").read_text()]
    dropins = unit_dir / "ev-gateway.service.d"
    if dropins.is_dir():
        parts += [p.read_text() for p in sorted(dropins.glob("*.conf"))]
    return "\n".join(parts)


def verified_unit(prefix: Path, workdir: Path) -> str:
    """The installed unit with its drop-ins, paths under prefix, after
    `systemd-analyze verify` found nothing wrong with it (ExecStart must exist)."""
    unit = under(prefix, unit_with_dropins(prefix))
    workdir.mkdir()
    (workdir / "ev-gateway.service").write_text(unit)
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(workdir / "ev-gateway.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stderr
    return unit


def directives(unit: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith(f"{key}=")]


@pytest.fixture
def prefix() -> Iterator[Path]:
    """A temporary root the service user can traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="evgw-install-", dir="/tmp"))
    path.chmod(0o755)
    for present in ("etc/systemd/system", "var/lib", "opt", "run"):  # as on any Debian machine
        (path / present).mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def password_broker(tmp_path: Path, shared: Path) -> Mosquitto:
    """A mosquitto that wants a login (its password file where it can read it as root
    drops to the mosquitto user)."""
    passwords = shared / "mosquitto-passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "gateway", PASSWORD],
        check=True,
        capture_output=True,
    )
    passwords.chmod(0o644)
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwords}\n"
        "persistence false\nlog_dest stderr\nlog_type error\n"
    )
    broker = Mosquitto(port, conf, tmp_path / "mosquitto.log")
    broker.start()
    return broker


def edit_config(path: Path, broker_port: int, charger_ports: dict[int, int]) -> None:
    """What the installer does by hand: broker, login, where the chargers are."""
    text = path.read_text()
    text = text.replace("port = 1883", f"port = {broker_port}")
    text = text.replace('# username = "gateway"', 'username = "gateway"')
    text = re.sub(r"# password_file = .*", 'password_file = "mqtt-password"', text)
    for old, new in charger_ports.items():
        text = text.replace(f"port = {old}\n", f"port = {new}\n")
    path.write_text(text)


def as_service_user(argv: list[str]) -> list[str]:
    """argv run as the unprivileged service user (when we are root, as CI is)."""
    if os.geteuid() != 0:
        return argv  # already unprivileged; the owner checks below need root
    ids = [f"--reuid={SERVICE_UID}", f"--regid={SERVICE_UID}", "--clear-groups"]
    return ["setpriv", *ids, "--inh-caps=-all", "--", *argv]


def load_credentials(unit: str, prefix: Path) -> Path:
    """What LoadCredential= does: copies only the service user can read."""
    target = prefix / "run/credentials/ev-gateway.service"
    target.mkdir(parents=True)
    for spec in directives(unit, "LoadCredential"):
        name, source = spec.split(":", 1)
        shutil.copyfile(source, target / name)
        (target / name).chmod(0o400)
    target.chmod(0o500)
    if os.geteuid() == 0:
        for path in [target, *target.iterdir()]:
            os.chown(path, SERVICE_UID, SERVICE_UID)
    return target


@pytest.mark.timeout(900)
async def test_readme_install_runs_the_service_as_an_unprivileged_user(
    prefix: Path, tmp_path: Path
) -> None:
    blocks = readme_blocks()
    assert {"install", "secrets", "start", "upgrade", "uninstall"} <= blocks.keys()
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "MQTT_PASSWORD": PASSWORD,
    }
    env.update({k: v for k, v in os.environ.items() if k.startswith(("PIP_", "http"))})
    assert run_block(blocks["install"], prefix, env) == []
    assert run_block(blocks["secrets"], prefix, env) == []
    etc = prefix / "etc/ev-gateway"
    assert (etc / "gateway.toml").stat().st_mode & 0o777 == 0o644
    assert (etc / "credentials").stat().st_mode & 0o777 == 0o700
    assert (etc / "credentials/mqtt-password").stat().st_mode & 0o777 == 0o600
    assert (etc / "credentials/mqtt-password").read_text() == PASSWORD

    broker = password_broker(tmp_path, prefix)
    sim_ports = {5020: free_port(), 5021: free_port(), 5030: free_port()}
    edit_config(etc / "gateway.toml", broker.port, sim_ports)
    skipped = run_block(blocks["start"], prefix, env)
    assert "systemctl daemon-reload" in skipped
    assert "systemctl enable --now ev-gateway" in skipped

    unit = verified_unit(prefix, tmp_path / "verify")
    assert directives(unit, "DynamicUser") == ["yes"]
    if os.geteuid() == 0:
        # without LoadCredential the service user could not read the secret at all
        peek = subprocess.run(
            as_service_user(["cat", str(etc / "credentials/mqtt-password")]),
            capture_output=True,
            timeout=30,
        )
        assert peek.returncode != 0

    installed = prefix / "opt/ev-gateway/bin/ev-gateway"
    state = prefix / "var/lib/private/ev-gateway"
    state.mkdir(parents=True)
    notify_path = prefix / "run/notify"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify_path.chmod(0o777)
    notify.setblocking(False)
    if os.geteuid() == 0:
        os.chown(state, SERVICE_UID, SERVICE_UID)
    service_env = {
        "PATH": env["PATH"],
        "CREDENTIALS_DIRECTORY": str(load_credentials(unit, prefix)),
        "STATE_DIRECTORY": str(state),
        "NOTIFY_SOCKET": str(notify_path),
    }
    exec_start = directives(unit, "ExecStart")[0].split()
    simulate = subprocess.Popen(
        [str(installed), "simulate", "--config", str(etc / "gateway.toml")],
        env={**env, "CREDENTIALS_DIRECTORY": str(etc / "credentials")},
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "simulate.log").open("wb"),
    )
    daemon = subprocess.Popen(
        as_service_user(exec_start),
        env=service_env,
        cwd="/",
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "daemon.log").open("wb"),
    )
    try:
        loop = asyncio.get_running_loop()
        ready = b""
        async with asyncio.timeout(60):
            while b"READY=1" not in ready:
                ready = await loop.sock_recv(notify, 4096)
        async with aiomqtt.Client(
            broker.host, port=broker.port, username="gateway", password=PASSWORD
        ) as client:
            await client.subscribe("ev-gateway/bridge/state")
            await client.subscribe("ev-gateway/pools/garage/power")
            seen: dict[str, bytes] = {}
            async with asyncio.timeout(30):
                async for message in client.messages:
                    seen[str(message.topic)] = bytes(message.payload)
                    power = seen.get("ev-gateway/pools/garage/power", b"")
                    if "ev-gateway/bridge/state" in seen and b'"missing":[]' in power:
                        break
        # the service user logged in with the credential and polled every charger
        assert seen["ev-gateway/bridge/state"] == b"online"
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    finally:
        notify.close()
        for process in (daemon, simulate):
            if process.poll() is None:
                process.kill()
                process.wait(10)
        logs = [tmp_path / "daemon.log", tmp_path / "simulate.log"]
        sys.stderr.write("".join(p.read_text(errors="replace")[-3000:] for p in logs))

    try:
        assert run_block(blocks["serial"], prefix, env) == [
            "systemctl daemon-reload && systemctl restart ev-gateway"
        ]
        await check_serial_access(prefix, broker, service_env, tmp_path)
    finally:
        broker.stop()

    assert run_block(blocks["upgrade"], prefix, env) == [
        "systemctl daemon-reload",
        "systemctl restart ev-gateway",
    ]
    assert installed.exists()
    run_block(blocks["uninstall"], prefix, env)
    assert not (prefix / "opt/ev-gateway").exists()
    assert not (prefix / "etc/systemd/system/ev-gateway.service").exists()
    assert not etc.exists()


SERIAL_CONFIG = """
[mqtt]
port = {broker_port}
username = "gateway"
password_file = "mqtt-password"

[power]
resampling_period = 0.5

[[chargers]]
id = "box-1"
adapter = "modbus"
profile = "heidelberg-energy-control"
unit_id = 1
serial = {{ port = "{port}", baudrate = 19200, parity = "N" }}
"""


async def check_serial_access(
    prefix: Path, broker: Mosquitto, service_env: dict[str, str], tmp_path: Path
) -> None:
    """With serial.conf, the service user opens a serial port of group dialout, 0660,
    and polls the box behind it; the same user without the group cannot."""
    from gateway.simulator.modbus_server import SimulatedCharger
    from gateway.simulator.rtu_server import SimulatedRtuBus

    unit = verified_unit(prefix, tmp_path / "verify-serial")
    assert directives(unit, "PrivateDevices")[-1] == "no"  # the drop-in wins
    groups = directives(unit, "SupplementaryGroups")
    assert groups == ["dialout"]

    near, far = prefix / "run/ttyRS485", prefix / "run/ttySim"
    socat = subprocess.Popen(
        ["socat", f"pty,raw,echo=0,link={near},group=dialout,perm=0660",
         f"pty,raw,echo=0,link={far}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    config = prefix / "etc/ev-gateway/gateway.toml"
    config.write_text(SERIAL_CONFIG.format(broker_port=broker.port, port=near))
    exec_start = directives(unit, "ExecStart")[0].split()
    box = SimulatedCharger("heidelberg-energy-control", unit_id=1)
    box.plug(phases=3, ev_max_current=16.0)
    try:
        wait_for_paths(near, far)
        async with SimulatedRtuBus(str(far), [box], baudrate=19200, parity="N"):
            if os.geteuid() == 0:
                refused = await _charger_state(as_service_user(exec_start), service_env, broker)
                # the pty is root:dialout 0660: a user without the group cannot open it
                assert "cannot open serial port" in str(refused["error"]), refused
            with_group = exec_start
            if os.geteuid() == 0:
                ids = [f"--reuid={SERVICE_UID}", f"--regid={SERVICE_UID}", f"--groups={groups[0]}"]
                with_group = ["setpriv", *ids, "--inh-caps=-all", "--", *exec_start]
            state = await _charger_state(
                with_group, service_env, broker, lambda s: s["status"] == "working"
            )
            assert state["error"] is None and state["active_power"] > 0
    finally:
        socat.terminate()
        socat.wait(10)


def wait_for_paths(*paths: Path, timeout: float = 10.0) -> None:
    """Until socat has created the pty pair (its own start-up, not gateway timing)."""
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"socat did not create {paths}"
        time.sleep(0.02)


async def _charger_state(
    argv: list[str],
    env: dict[str, str],
    broker: Mosquitto,
    predicate: Callable[[dict[str, Any]], bool] = lambda s: s["error"] is not None,
) -> dict[str, Any]:
    """Run the daemon until box-1's state satisfies predicate; that state."""
    daemon = subprocess.Popen(
        argv, env={k: v for k, v in env.items() if k != "NOTIFY_SOCKET"}, cwd="/",
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        async with aiomqtt.Client(
            broker.host, port=broker.port, username="gateway", password=PASSWORD
        ) as client:
            await client.subscribe("ev-gateway/chargers/box-1/state")
            async with asyncio.timeout(40):
                async for message in client.messages:
                    state: dict[str, Any] = json.loads(bytes(message.payload))
                    if predicate(state):
                        return state
    finally:
        daemon.terminate()
        _, err = daemon.communicate(timeout=30)
        sys.stderr.write(err.decode(errors="replace")[-2000:])
    raise AssertionError("unreachable")
