#!/usr/bin/env bash
# Bootstrap, bring up a profile's servers, run a command with AMQP_URI / MONGO_URI /
# RABBIT_MGMT_URI exported, then stop exactly the servers this call started.
#
#   scripts/with-infra.sh <run|test> [--keep | --keep-unless-ci] -- command [args...]
#
#   --keep            leave the servers running afterwards (a later run starts in no time)
#   --keep-unless-ci  --keep, except when CI=true (then they are stopped at the end)
#
# Exits with the command's exit code. The command runs in the foreground, so Ctrl-C reaches it;
# the servers run in their own session and are stopped cleanly by the EXIT trap.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

[[ $# -ge 1 ]] || { sed -n '2,9p' "$0" >&2; exit 2; }
PROFILE="$1"; shift
KEEP=0
case "${1:-}" in
    --keep) KEEP=1; shift ;;
    --keep-unless-ci)
        shift
        case "${CI:-}" in true|True|TRUE|1|yes) KEEP=0 ;; *) KEEP=1 ;; esac ;;
esac
[[ "${1:-}" == -- ]] && shift
[[ $# -ge 1 ]] || { echo "zhifa: with-infra.sh: no command given" >&2; exit 2; }

"$ROOT/scripts/bootstrap.sh"

ZHIFA_INFRA_STARTED=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [[ $KEEP == 0 && -n "$ZHIFA_INFRA_STARTED" ]]; then
        # shellcheck disable=SC2086  # word splitting of the component list is intended
        "$ROOT/scripts/infra.sh" down "$PROFILE" $ZHIFA_INFRA_STARTED || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

exports="$("$ROOT/scripts/infra.sh" up "$PROFILE")"
eval "$exports"

rc=0
"$@" || rc=$?
exit "$rc"
