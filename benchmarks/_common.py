"""Helpers the benchmarks share: a mosquitto on a free port, a gateway config for
simulated chargers, percentiles, and a process's CPU time and RSS read from /proc.

Nothing here measures anything by itself; each benchmark module says what it does.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

VOLTS = 230.0
"""Nominal voltage of the simulated EVs (3 phases each)."""

_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_mosquitto(workdir: Path, extra: str = "") -> tuple[subprocess.Popen[bytes], int]:
    """A mosquitto on a free port (anonymous, no persistence); returns it and the port."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = workdir / f"mosquitto-{port}.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{extra}")
    process = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("mosquitto did not start")


def write_gateway_config(
    path: Path,
    broker_port: int,
    ports: Sequence[int],
    *,
    poll_interval: float = 1.0,
    extra: str = "",
) -> None:
    """A config polling generic-profile chargers on 127.0.0.1 `ports`, fast ramps."""
    lines = [
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\n{extra}',
        "[power]\nresampling_period = 1.0\nmax_data_age = 5.0\n",
        "[distribution]\nramp_up_rate = 80.0\nmin_on_time = 0.0\nmin_off_time = 0.0\n",
        "[homeassistant]\nenabled = false\n",
    ]
    for index, port in enumerate(ports):
        lines.append(
            f'[[chargers]]\nid = "c{index}"\nadapter = "modbus"\nprofile = "generic"\n'
            f'host = "127.0.0.1"\nport = {port}\nmax_current = 16.0\n'
            f"poll_interval = {poll_interval}\n"
        )
    path.write_text("\n".join(lines))


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (`fraction` 0.99 for p99) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process has used so far (/proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[11] and fields[12] are utime and stime (fields 14 and 15 of the man page)
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_kib(pid: int) -> int:
    """A process's resident set size in KiB (/proc/<pid>/status, VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")
