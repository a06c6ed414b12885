"""Cached installs of real third-party clients for the tests, under ~/.cache/ev-gateway.

Each install lands in a directory keyed by the client's version and is marked
complete by a stamp file written last, so an interrupted install is redone, never
half-used. `python -m tests.clients.cache homeassistant|node-red` installs ahead of a
test run (CI can cache the directory) and prints how long it took.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HA_VERSION = "2024.3.3"
HA_PACKAGES = [
    f"homeassistant=={HA_VERSION}",
    "josepy<2",  # josepy 2 drops an API HA 2024.3's acme dependency imports at start
    "paho-mqtt==1.6.1",  # the MQTT integration's requirement in 2024.3
    # Requirements of integrations Home Assistant always loads (frontend, onboarding and
    # what they depend on), pinned as their 2024.3 manifests say. `hass --skip-pip` does
    # not install them, and without them it starts in recovery mode with no onboarding.
    "home-assistant-frontend==20240307.0",
    "Pillow==10.2.0",  # image_upload
    "janus==1.0.0",  # file_upload
    "psutil-home-assistant==0.0.1",  # hardware, recorder
    "securetar==2024.2.1",  # backup
    "SQLAlchemy==2.0.27",  # recorder, imported by analytics
    "fnv-hash-fast==0.5.0",  # recorder
]
NODE_RED_VERSION = "4.1.1"
STAMP = ".installed"


class InstallError(RuntimeError):
    """A client could not be installed (no network, no interpreter, registry refused)."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ev-gateway"


@dataclass(frozen=True)
class Installed:
    path: Path
    seconds: float
    cached: bool


def _run(command: list[str], cwd: Path | None = None, timeout: float = 1800) -> None:
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{' '.join(command[:3])}: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise InstallError(f"{' '.join(command[:4])} failed: {' | '.join(tail)}")


def _cached(name: str, version: str, build: Callable[[Path], None]) -> Installed:
    """`build(target)` into `{cache}/{name}-{version}` unless a complete copy is there."""
    target = cache_root() / f"{name}-{version}"
    if (target / STAMP).exists():
        return Installed(target, 0.0, True)
    start = time.monotonic()
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    build(target)
    (target / STAMP).write_text(version)
    return Installed(target, time.monotonic() - start, False)


def _tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise InstallError(f"{name} is not installed ({hint})")
    return path


def home_assistant_venv() -> Installed:
    """A Python 3.11 venv with Home Assistant; the `hass` binary is in its bin/."""
    python = _tool("python3.11", "Home Assistant 2024.3 needs it")

    def build(target: Path) -> None:
        _run([python, "-m", "venv", str(target)])
        venv_python = str(target / "bin" / "python")
        pip = [venv_python, "-m", "pip", "install", "-q"]
        _run([*pip, "--upgrade", "pip"])
        _run([*pip, *HA_PACKAGES])
        # Compile now: a first start would otherwise spend ~40 s compiling.
        _run([venv_python, "-m", "compileall", "-q", "-j", "0", str(target / "lib")])

    # The key names the package list too: a cache built from another list is rebuilt.
    packages = hashlib.sha256(" ".join(HA_PACKAGES).encode()).hexdigest()[:8]
    return _cached("ha-venv", f"{HA_VERSION}-{packages}", build)


def node_red() -> Installed:
    """node-red installed from npm into its own prefix (node_modules/node-red)."""
    npm = _tool("npm", "apt-get install -y nodejs npm")

    def build(target: Path) -> None:
        (target / "package.json").write_text('{"name": "evgw-node-red", "private": true}\n')
        _run(
            [npm, "install", "--no-audit", "--no-fund", "--omit=dev",
             f"node-red@{NODE_RED_VERSION}"],
            cwd=target,
        )

    return _cached("node-red", NODE_RED_VERSION, build)


def main() -> int:
    which = sys.argv[1:] or ["homeassistant", "node-red"]
    installers = {"homeassistant": home_assistant_venv, "node-red": node_red}
    for name in which:
        try:
            done = installers[name]()
        except (InstallError, KeyError) as exc:
            print(f"{name}: cannot install: {exc}")
            return 1
        state = "cached" if done.cached else f"installed in {done.seconds:.0f} s"
        print(f"{name}: {done.path} ({state})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
