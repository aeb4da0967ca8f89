#!/usr/bin/env bash
# `make run`: bootstrap, start the 'run' profile's RabbitMQ + FerretDB (5672/15672/27017),
# then the whole suite through services.launcher (every service process, demo data, URLs).
# Ctrl-C stops the launcher, then the servers this call started (see scripts/with-infra.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "$ROOT/scripts/with-infra.sh" run -- "$ROOT/.venv/bin/python" -m services.launcher "$@"
