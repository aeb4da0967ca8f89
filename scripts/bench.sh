#!/usr/bin/env bash
# `make bench`: bootstrap, the 'run' profile's servers, then `python -m services.simulator.bench`. Servers this call
# started are stopped afterwards; ones already running (e.g. under `make run`) are left alone.
# Without a running suite the bench starts every declared service process (services/*/manifest.py)
# in a vhost and database prefix of its own. The summary goes to .run/bench/latest.json (--out).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "$ROOT/scripts/with-infra.sh" run -- "$ROOT/.venv/bin/python" -m services.simulator.bench "$@"
