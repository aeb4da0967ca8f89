#!/usr/bin/env bash
# `make test`: bootstrap, start the 'test' profile's servers (5682/15682/27027), run pytest with
# AMQP_URI / MONGO_URI / RABBIT_MGMT_URI exported, exit with pytest's code. The servers stay up
# for the next run, except under CI=true.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# the browser tests of the console need Debian's chromium, the FerretDB-on-PostgreSQL test Debian's
# postgresql (each installed once; with-infra.sh does the rest)
"$ROOT/scripts/bootstrap.sh" browser postgresql
exec "$ROOT/scripts/with-infra.sh" test --keep-unless-ci -- "$ROOT/.venv/bin/python" -m pytest "$@"
