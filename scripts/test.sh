#!/usr/bin/env bash
# `make test`: bootstrap, start the 'test' profile's servers (5682/15682/27027), run pytest with
# AMQP_URI / MONGO_URI / RABBIT_MGMT_URI exported, exit with pytest's code. The servers stay up
# for the next run, except under CI=true.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# the browser tests of the console need Debian's chromium, the FerretDB-on-PostgreSQL test Debian's
# postgresql (each installed once; with-infra.sh does the rest)
"$ROOT/scripts/bootstrap.sh" browser postgresql
# Without arguments, the whole suite as ZHIFA_TEST_SHARDS (default 2) pytest processes side by side
# (scripts/test_shards.py, tests/shards.py); with PYTEST_ARGS, one pytest process with those arguments.
if [[ $# -eq 0 ]]; then
    exec "$ROOT/scripts/with-infra.sh" test --keep-unless-ci -- \
        "$ROOT/.venv/bin/python" "$ROOT/scripts/test_shards.py" "${ZHIFA_TEST_SHARDS:-2}"
fi
exec "$ROOT/scripts/with-infra.sh" test --keep-unless-ci -- "$ROOT/.venv/bin/python" -m pytest "$@"
