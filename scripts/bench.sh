#!/usr/bin/env bash
# `make bench`: bootstrap, the 'run' profile's servers, then `python -m bench`. Servers this call
# started are stopped afterwards; ones already running (e.g. under `make run`) are left alone.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "$ROOT/scripts/with-infra.sh" run -- "$ROOT/.venv/bin/python" -m services.simulator.bench "$@"
