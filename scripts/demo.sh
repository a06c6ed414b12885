#!/usr/bin/env bash
# Install the gateway in .venv and run the demo: simulated chargers, the configured
# broker or an embedded one, live figures until Ctrl-C. Extra arguments go to `demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[demo]"
exec .venv/bin/ev-gateway demo "$@"
