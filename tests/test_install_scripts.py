"""scripts/: the demo and test scripts install into .venv only when pyproject.toml
changed, say what they do meanwhile, and never touch the machine's services."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Stands in for .venv/bin/python: logs each call, and installs nothing.
RECORDING_PYTHON = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/../calls"
case "$*" in *"--progress-bar"*) echo "Collecting aiomqtt"; echo "Successfully installed";; esac
"""

FAILING_PYTHON = '#!/bin/sh\ncase "$*" in *"-e ."*) echo "ERROR: no network"; exit 1;; esac\n'


def checkout(workdir: Path, python_script: str) -> None:
    """The script and pyproject.toml in workdir, with a .venv whose python is a script."""
    (workdir / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "venv.sh", workdir / "scripts" / "venv.sh")
    shutil.copy(REPO / "pyproject.toml", workdir / "pyproject.toml")
    python = workdir / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(python_script)
    python.chmod(0o755)


def ensure(workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", ". scripts/venv.sh && ensure_venv demo"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_install_runs_once_per_pyproject_change(tmp_path: Path) -> None:
    checkout(tmp_path, RECORDING_PYTHON)
    calls = tmp_path / ".venv" / "calls"

    first = ensure(tmp_path)
    assert first.returncode == 0, first.stderr
    assert "installing ev-gateway[demo] into .venv" in first.stdout
    assert "  Collecting aiomqtt" in first.stdout  # pip's progress, indented
    assert "-e .[demo]" in calls.read_text()

    calls.unlink()
    again = ensure(tmp_path)
    assert again.returncode == 0 and again.stdout == ""
    assert not calls.exists()  # nothing changed: pip is not even started

    (tmp_path / "pyproject.toml").write_text(
        (tmp_path / "pyproject.toml").read_text() + "\n# changed\n"
    )
    changed = ensure(tmp_path)
    assert "installing" in changed.stdout
    assert calls.exists()


def test_a_failed_install_is_retried_next_time(tmp_path: Path) -> None:
    checkout(
        tmp_path, '#!/bin/sh\ncase "$*" in *"-e ."*) echo "ERROR: no network"; exit 1;; esac\n'
    )
    failed = ensure(tmp_path)
    assert failed.returncode != 0
    assert "pip install failed" in failed.stderr
    assert not list((tmp_path / ".venv").glob(".installed-*"))  # so the next run retries


def test_the_scripts_leave_the_machines_services_alone() -> None:
    for script in ("test.sh", "demo.sh", "venv.sh"):
        text = (REPO / "scripts" / script).read_text()
        commands = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
        assert not any("systemctl" in line or "service " in line for line in commands), script
