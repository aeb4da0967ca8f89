#!/usr/bin/env bash
# Bootstrap, bring up a profile's servers, run a command with AMQP_URI / MONGO_URI /
# RABBIT_MGMT_URI exported, then stop the servers this call started — once no other call of
# this script still uses them.
#
#   scripts/with-infra.sh <run|test> [--keep | --keep-unless-ci] -- command [args...]
#
#   --keep            leave the servers running afterwards (a later run starts in no time)
#   --keep-unless-ci  --keep, except when CI=true (then they are stopped at the end)
#
# Exits with the command's exit code. The command runs in the foreground, so Ctrl-C reaches it;
# the servers run in their own session and are stopped cleanly by the EXIT trap.
#
# Several calls may share a profile's servers (`make run` in one terminal and `make bench` in another
# both use `run`): each call registers itself under .run/<profile>/users/ while its command runs. A call
# that started servers and ends while another still runs leaves them to the last one out, which stops
# them (.run/<profile>/users/stop lists them); a last one out with --keep leaves them running. Before
# this, the first to end stopped the servers under the other one's feet.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
INFRA="${ZHIFA_INFRA_SH:-$ROOT/scripts/infra.sh}"   # (tests put a stand-in here)
BOOTSTRAP="${ZHIFA_BOOTSTRAP_SH:-$ROOT/scripts/bootstrap.sh}"
# shellcheck source=scripts/components.sh
source "$ROOT/scripts/components.sh"

[[ $# -ge 1 ]] || { sed -n '2,10p' "$0" >&2; exit 2; }
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

"$BOOTSTRAP"

USERS="$ROOT/.run/$PROFILE/users"
mkdir -p "$USERS"

# the calls of this script using the profile's servers now, other than this one (stale entries dropped)
others() {
    local f pid found=1
    for f in "$USERS"/[0-9]*; do
        [[ -e "$f" ]] || continue
        pid="${f##*/}"
        [[ "$pid" == "$$" ]] && continue
        # (alive, and still this script: a pid the system gave to another program since does not count)
        if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'with-infra\.sh'; then
            found=0
        else
            rm -f "$f"
        fi
    done
    return $found
}

# the lock on fd 9 that registering, deciding and stopping hold (util-linux's flock; as in bootstrap.sh, a
# system without it runs unlocked)
lock() { if command -v flock >/dev/null; then flock 9; fi; }

ZHIFA_INFRA_STARTED=""
cleanup() {
    local rc=$? stop=""
    trap - EXIT INT TERM HUP
    {
        lock
        rm -f "$USERS/$$"
        [[ $KEEP == 0 ]] && stop="$ZHIFA_INFRA_STARTED"
        if others; then
            if [[ -n "${stop// /}" ]]; then
                echo "zhifa: with-infra.sh: the $PROFILE servers stay up for another call still using them; the last one out stops them" >&2
                echo "$stop" >> "$USERS/stop"
            fi
            stop=""
        elif [[ -f "$USERS/stop" ]]; then
            # (only the names infra.sh knows, scripts/components.sh: a damaged word, or a `*`, neither reaches
            # `down` — which refuses a list with an unknown name — nor keeps the rest of the servers up)
            [[ $KEEP == 0 ]] && stop="$stop $(tr -s '[:space:]' '\n' < "$USERS/stop" \
                | { grep -axF -f <(printf '%s\n' "${ZHIFA_COMPONENTS[@]}") || true; } | tr '\n' ' ')"
            rm -f "$USERS/stop"
        fi
        if [[ -n "${stop// /}" ]]; then  # (under the lock: a call starting meanwhile waits, then starts them again)
            # shellcheck disable=SC2086  # word splitting of the component list is intended
            "$INFRA" down "$PROFILE" $(printf '%s\n' $stop | sort -u) 9>&- || true
        fi
    } 9>"$USERS/.lock"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

{ lock; : > "$USERS/$$"; } 9>"$USERS/.lock"   # (before `up`: a call ending meanwhile sees this one)
exports="$("$INFRA" up "$PROFILE")"
eval "$exports"

rc=0
"$@" || rc=$?
exit "$rc"
