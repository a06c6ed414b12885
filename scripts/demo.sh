#!/usr/bin/env bash
# Install the gateway in .venv (when pyproject.toml changed) and run the demo: three
# simulated chargers wired like config/example.toml, the configured broker or an
# embedded one, live figures until Ctrl-C. Extra arguments go to `ev-gateway demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
ensure_venv demo
exec .venv/bin/ev-gateway demo "$@"
