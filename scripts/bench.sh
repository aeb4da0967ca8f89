#!/usr/bin/env bash
# `make bench`: bootstrap, the 'run' profile's servers, then `python -m services.simulator.bench`. Servers this call
# started are stopped afterwards; ones already running (e.g. under `make run`) are left alone.
# Without a running suite the bench starts every declared service process (services/*/manifest.py)
# in a vhost and database prefix of its own. The summary goes to .run/bench/latest.json (--out).
# Then the API latency figure at 1,000,000 cases is printed from its own JSON (.run/bench/api-cases.json,
# written by `python -m services.simulator.bigcases`, ≈ 21 minutes to fill here), or else from the
# measurement recorded in the repository (docs/bench/api-cases.json): with the case count, the machine and
# the time it was measured at, or how to measure it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rc=0
"$ROOT/scripts/with-infra.sh" run -- "$ROOT/.venv/bin/python" -m services.simulator.bench "$@" || rc=$?
"$ROOT/.venv/bin/python" -W ignore -m services.simulator.bigcases --report || true
exit "$rc"
