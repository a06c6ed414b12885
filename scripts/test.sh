#!/usr/bin/env bash
# Install what the tests need (mosquitto and socat from Debian, Python packages in
# .venv), then run the linters and the whole test suite against real parts.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ] || ! command -v socat >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    sudo_if_needed apt-get update -qq
    sudo_if_needed apt-get install -y -qq mosquitto socat >/dev/null
fi
# The tests start their own brokers; the packaged service is not needed.
command -v systemctl >/dev/null 2>&1 && sudo_if_needed systemctl disable --now mosquitto >/dev/null 2>&1 || true

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[dev]"

export PATH="$PWD/.venv/bin:/usr/sbin:$PATH"
ruff check gateway tests benchmarks
mypy
python -m pytest -q "$@"
