#!/usr/bin/env bash
# Install what the tests need when it is missing (mosquitto, socat and systemd's
# systemd-analyze from Debian; Python packages in .venv), then run the linters and the
# whole test suite against real parts. Extra arguments go to pytest.
# No service of this machine is started, stopped or disabled: every test starts its
# own broker on a free port.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v socat >/dev/null 2>&1 || missing+=(socat)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing from Debian: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    sudo_if_needed apt-get update -qq
    sudo_if_needed apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

. scripts/venv.sh
ensure_venv dev

export PATH="$PWD/.venv/bin:/usr/sbin:$PATH"
echo "ruff"; ruff check gateway tests benchmarks
echo "mypy"; mypy
echo "pytest"; python -m pytest -q "$@"
