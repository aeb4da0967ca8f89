#!/usr/bin/env bash
# Project-local RabbitMQ and FerretDB, one set per profile, all state under .run/<profile>/.
#
#   scripts/infra.sh up     <profile> [rabbitmq|ferretdb ...]   start what is not running, wait, print exports
#   scripts/infra.sh down   <profile> [rabbitmq|ferretdb ...]   stop what this profile started (pid files)
#   scripts/infra.sh status <profile>                           show what runs where
#   scripts/infra.sh env    <profile>                           print the exports without starting anything
#
# Profiles (so the test suite never collides with a running demo):
#   run   AMQP 5672  management 15672  Erlang dist 25673  Mongo 27017  FerretDB debug 28017  RabbitMQ metrics 15692
#   test  AMQP 5682  management 15682  Erlang dist 25683  Mongo 27027  FerretDB debug 28027  RabbitMQ metrics 15702
#   chaos AMQP 5702  management 15722  Erlang dist 25703  Mongo 27037  FerretDB debug 28037  RabbitMQ metrics 15712
#         (`make chaos` only: a node of its own that the fault test stops and starts again)
#   bench AMQP 5712  management 15732  Erlang dist 25713  Mongo 27057  FerretDB debug 28057  RabbitMQ metrics 15742
# Ports can be overridden with ZHIFA_AMQP_PORT, ZHIFA_MGMT_PORT, ZHIFA_DIST_PORT, ZHIFA_MONGO_PORT,
# ZHIFA_FERRETDB_DEBUG_PORT, ZHIFA_RABBIT_PROMETHEUS_PORT.
#
# FerretDB's backend: ZHIFA_FERRETDB_BACKEND=sqlite (default; data in .run/<profile>/ferretdb) or
# postgresql: a private PostgreSQL cluster of the profile under .run/<profile>/pg (initdb on first use,
# no TCP listener, its unix socket in that directory, no system service; run as the `postgres` user
# when called as root), started before FerretDB (`--handler=postgresql`) and stopped by `down`.
# ZHIFA_PG_SYNC_COMMIT (default off, like SQLite's synchronous=normal: consistent after a crash, the
# last commits may be lost on power loss). A profile's FerretDB runs one backend at a time: `down`
# it before switching. docs/benchmark.md ("FerretDB backend") has the comparison.
# FerretDB's Go garbage collector: ZHIFA_FERRETDB_GOGC (default 400) and ZHIFA_FERRETDB_GOMEMLIMIT
# (default 512MiB); docs/bench/history.md ("FerretDB's own CPU per command") has the measurements.
#
# `up` prints shell `export` lines on stdout (progress goes to stderr), so callers do
#   eval "$(scripts/infra.sh up test)"
# If AMQP_URI (or MONGO_URI) is already set in the environment, that server is not started and
# the given URI is passed through. ZHIFA_INFRA_STARTED lists what this call started, so a caller
# can stop exactly that afterwards (`scripts/infra.sh down <profile> $ZHIFA_INFRA_STARTED`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RABBIT_BIN="${RABBITMQ_BIN_DIR:-/usr/lib/rabbitmq/bin}"
FERRETDB_BIN="${FERRETDB_BIN:-$ROOT/.run/bin/ferretdb}"
HOST=127.0.0.1

say() { printf 'zhifa: %s\n' "$*" >&2; }
die() { printf 'zhifa: ERROR: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[[ $# -ge 2 ]] || usage
CMD="$1" PROFILE="$2"
shift 2
COMPONENTS=("$@")
ARGS_GIVEN=("$@")
[[ ${#COMPONENTS[@]} -gt 0 ]] || COMPONENTS=(rabbitmq ferretdb)
# shellcheck source=scripts/components.sh
source "$(dirname "${BASH_SOURCE[0]}")/components.sh"
for c in "${COMPONENTS[@]}"; do
    [[ " ${ZHIFA_COMPONENTS[*]} " == *" $c "* && "$c" != *" "* ]] \
        || die "unknown component '$c' ($(IFS='|'; echo "${ZHIFA_COMPONENTS[*]}"))"
done
wants() { local c; for c in "${COMPONENTS[@]}"; do [[ "$c" == "$1" ]] && return 0; done; return 1; }

case "$PROFILE" in
    run)  d_amqp=5672 d_mgmt=15672 d_dist=25673 d_mongo=27017 d_fdebug=28017 d_rprom=15692 stats_ms=5000 ;;
    test) d_amqp=5682 d_mgmt=15682 d_dist=25683 d_mongo=27027 d_fdebug=28027 d_rprom=15702 stats_ms=1000 ;;
    bench) d_amqp=5712 d_mgmt=15732 d_dist=25713 d_mongo=27057 d_fdebug=28057 d_rprom=15742 stats_ms=5000 ;;
    chaos) d_amqp=5702 d_mgmt=15722 d_dist=25703 d_mongo=27037 d_fdebug=28037 d_rprom=15712 stats_ms=1000 ;;
    *) die "unknown profile '$PROFILE' (run|test|chaos|bench)" ;;
esac
AMQP_PORT="${ZHIFA_AMQP_PORT:-$d_amqp}"
MGMT_PORT="${ZHIFA_MGMT_PORT:-$d_mgmt}"
DIST_PORT="${ZHIFA_DIST_PORT:-$d_dist}"
MONGO_PORT="${ZHIFA_MONGO_PORT:-$d_mongo}"
FDEBUG_PORT="${ZHIFA_FERRETDB_DEBUG_PORT:-$d_fdebug}"
RPROM_PORT="${ZHIFA_RABBIT_PROMETHEUS_PORT:-$d_rprom}"   # rabbitmq_prometheus: queue depths, consumers, redeliveries

P="$ROOT/.run/$PROFILE"
RMQ_DIR="$P/rabbitmq"
FER_DIR="$P/ferretdb"
LOGS="$P/logs"
PIDS="$P/pids"
NODE="zhifa-$PROFILE@localhost"
RMQ_PIDFILE="$PIDS/rabbitmq.pid"       # written by RabbitMQ itself (the beam.smp pid)
FER_PIDFILE="$PIDS/ferretdb.pid"
BACKEND="${ZHIFA_FERRETDB_BACKEND:-sqlite}"
[[ "$BACKEND" == sqlite || "$BACKEND" == postgresql ]] \
    || die "ZHIFA_FERRETDB_BACKEND='$BACKEND' is not a FerretDB backend (sqlite|postgresql)"
PG_DIR="$P/pg"                          # the unix socket lives here (no TCP listener)
PG_DATA="$PG_DIR/data"
PG_PORT="${ZHIFA_PG_PORT:-5432}"        # names the socket file only (.s.PGSQL.<port>)
PG_USER=zhifa PG_DB=ferretdb
PG_URL="postgres:///$PG_DB?host=$PG_DIR&port=$PG_PORT&user=$PG_USER"

OWN_AMQP_URI="amqp://guest:guest@$HOST:$AMQP_PORT/"
OWN_MGMT_URI="http://guest:guest@$HOST:$MGMT_PORT"
OWN_MONGO_URI="mongodb://$HOST:$MONGO_PORT/"

# ---------------------------------------------------------------- helpers

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }
cmdline() { { tr '\0' ' ' < "/proc/$1/cmdline"; } 2>/dev/null || true; }
# who listens on a port (best effort, for error messages only)
port_owner() {
    command -v ss >/dev/null || return 0
    ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -n1
}

wait_until() {  # wait_until <seconds> <description> <pid-that-must-stay-alive|""> <command...>
    local secs="$1" what="$2" pid="$3"; shift 3
    local deadline=$((SECONDS + secs))
    until "$@"; do
        if [[ -n "$pid" ]] && ! alive "$pid"; then return 2; fi
        if (( SECONDS >= deadline )); then say "timed out after ${secs}s waiting for $what"; return 1; fi
        sleep 0.2
    done
}

# Is <pid> this checkout's RabbitMQ node for the profile? (node name and data directory match)
is_our_rabbit() {
    local env
    [[ "$(cat "/proc/$1/comm" 2>/dev/null)" == beam.smp ]] || return 1
    env="$({ tr '\0' '\n' < "/proc/$1/environ"; } 2>/dev/null)" || return 1
    grep -qxF "RABBITMQ_NODENAME=$NODE" <<<"$env" && grep -qxF "RABBITMQ_MNESIA_BASE=$RMQ_DIR/mnesia" <<<"$env"
}

# Print the pid of this checkout's RabbitMQ node for the profile (beam.smp) if it runs, else fail.
rabbit_pid() {
    local pid=""
    [[ -f "$RMQ_PIDFILE" ]] && pid="$(tr -dc '0-9' < "$RMQ_PIDFILE")"
    if alive "$pid" && is_our_rabbit "$pid"; then echo "$pid"; return 0; fi
    # pid file lost or stale: look for a beam.smp started with our node name and data directory
    local d
    for d in /proc/[0-9]*; do
        if is_our_rabbit "${d#/proc/}"; then
            pid="${d#/proc/}"; echo "$pid" > "$RMQ_PIDFILE"; echo "$pid"; return 0
        fi
    done
    return 1
}

# The same profile's node started from ANOTHER checkout of the project (e.g. CI's fresh clone
# while a developer's test servers are still up): same node name, other data directory.
# Prints "<pid> <mnesia dir>". Such a node is compatible (guest on loopback) and is used as is.
rabbit_other_checkout() {
    local d env base
    for d in /proc/[0-9]*; do
        [[ "$(cat "$d/comm" 2>/dev/null)" == beam.smp ]] || continue
        env="$({ tr '\0' '\n' < "$d/environ"; } 2>/dev/null)" || continue
        grep -qxF "RABBITMQ_NODENAME=$NODE" <<<"$env" || continue
        base="$(sed -n 's/^RABBITMQ_MNESIA_BASE=//p' <<<"$env")"
        echo "${d#/proc/} $base"; return 0
    done
    return 1
}

ferretdb_pid() {
    local pid=""
    [[ -f "$FER_PIDFILE" ]] && pid="$(tr -dc '0-9' < "$FER_PIDFILE")"
    if alive "$pid" && [[ "$(cmdline "$pid")" == *"--state-dir=$FER_DIR "* ]]; then echo "$pid"; return 0; fi
    local d
    for d in /proc/[0-9]*; do
        if [[ "$(cmdline "${d#/proc/}")" == *ferretdb*"--state-dir=$FER_DIR "* ]]; then
            pid="${d#/proc/}"; echo "$pid" > "$FER_PIDFILE"; echo "$pid"; return 0
        fi
    done
    return 1
}

ferretdb_other_checkout() {
    local d c
    for d in /proc/[0-9]*; do
        c="$(cmdline "${d#/proc/}")"
        if [[ "$c" == *ferretdb*"--listen-addr=$HOST:$MONGO_PORT "* && "$c" == *"/.run/$PROFILE/ferretdb"* ]]; then
            echo "${d#/proc/} $(sed -n 's/.*--state-dir=\([^ ]*\).*/\1/p' <<<"$c")"; return 0
        fi
    done
    return 1
}

rabbit_env() {
    export RABBITMQ_NODENAME="$NODE"
    export RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia"
    export RABBITMQ_LOG_BASE="$LOGS"
    export RABBITMQ_CONFIG_FILE="$RMQ_DIR/rabbitmq"              # rabbitmq.conf, without extension
    export RABBITMQ_ADVANCED_CONFIG_FILE="$RMQ_DIR/advanced.config"  # absent on purpose: ignore /etc
    export RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/rabbitmq-env.conf"       # ditto for /etc/rabbitmq/rabbitmq-env.conf
    export RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/enabled_plugins"
    export RABBITMQ_PID_FILE="$RMQ_PIDFILE"
    export RABBITMQ_DIST_PORT="$DIST_PORT"
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export ERL_EPMD_ADDRESS="${ERL_EPMD_ADDRESS:-127.0.0.1}"
    [[ -n "${HOME:-}" ]] || export HOME="$ROOT/.run"   # Erlang keeps its cookie in $HOME/.erlang.cookie
}

# Servers must not inherit our descriptors beyond stdin/out/err: a lock (fd 9), make's
# jobserver pipe, or a CI runner's pipe held open by a daemon would block whoever waits on it.
close_extra_fds() {
    local fd
    for fd in "/proc/$BASHPID/fd/"*; do
        fd="${fd##*/}"
        if (( fd > 2 && fd != 255 )); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
}

write_if_changed() {  # write_if_changed <file> <content>
    [[ -f "$1" && "$(cat "$1")" == "$2" ]] || printf '%s\n' "$2" > "$1"
}

# ---------------------------------------------------------------- rabbitmq

STARTED=()

rabbit_up() {  # appends 'rabbitmq' to STARTED if it had to start the node
    local pid
    if pid="$(rabbit_pid)"; then
        if port_open $HOST "$AMQP_PORT" && port_open $HOST "$MGMT_PORT"; then return 0; fi
        say "RabbitMQ ($NODE, pid $pid) is running but not answering yet; waiting"
        wait_until 90 "RabbitMQ on :$AMQP_PORT" "$pid" \
            bash -c "(exec 3<>/dev/tcp/$HOST/$AMQP_PORT && exec 4<>/dev/tcp/$HOST/$MGMT_PORT) 2>/dev/null" \
            || die "RabbitMQ $NODE (pid $pid) does not answer; see $LOGS; 'scripts/infra.sh down $PROFILE' and retry"
        return 0
    fi
    local other
    if other="$(rabbit_other_checkout)"; then
        say "using RabbitMQ $NODE of another checkout (pid ${other%% *}, data ${other#* }); not starting one"
        wait_until 90 "RabbitMQ on :$AMQP_PORT" "${other%% *}" port_open $HOST "$AMQP_PORT" \
            || die "RabbitMQ $NODE of the other checkout does not answer on :$AMQP_PORT"
        return 0
    fi
    [[ -x "$RABBIT_BIN/rabbitmq-server" ]] || die "RabbitMQ is not installed ($RABBIT_BIN/rabbitmq-server missing); run scripts/bootstrap.sh"
    local port
    for port in "$AMQP_PORT" "$MGMT_PORT" "$DIST_PORT"; do
        if port_open $HOST "$port"; then
            die "port $port is already in use by another process ($(port_owner "$port")), not by this profile's RabbitMQ.
       Stop it, choose other ports (ZHIFA_AMQP_PORT/ZHIFA_MGMT_PORT/ZHIFA_DIST_PORT), or use it: export AMQP_URI=amqp://guest:guest@$HOST:$AMQP_PORT/"
        fi
    done

    mkdir -p "$RMQ_DIR/mnesia" "$LOGS" "$PIDS"
    write_if_changed "$RMQ_DIR/rabbitmq.conf" "# generated by scripts/infra.sh for profile '$PROFILE' - edits are overwritten
listeners.tcp.default = $HOST:$AMQP_PORT
management.tcp.ip = $HOST
management.tcp.port = $MGMT_PORT
prometheus.tcp.ip = $HOST
prometheus.tcp.port = $RPROM_PORT
prometheus.return_per_object_metrics = true
loopback_users = none
log.console = false
log.file.level = warning
collect_statistics_interval = $stats_ms
disk_free_limit.absolute = 50MB"
    write_if_changed "$RMQ_DIR/enabled_plugins" "[rabbitmq_management,rabbitmq_prometheus]."
    write_if_changed "$RMQ_DIR/rabbitmq-env.conf" "# intentionally empty: keeps /etc/rabbitmq/rabbitmq-env.conf out of the project's nodes"
    rm -f "$RMQ_PIDFILE"

    say "starting RabbitMQ $NODE (AMQP :$AMQP_PORT, management :$MGMT_PORT)"
    local launcher
    (
        rabbit_env
        cd "$RMQ_DIR"
        close_extra_fds
        exec setsid nohup "$RABBIT_BIN/rabbitmq-server" >>"$LOGS/rabbitmq.out" 2>&1 </dev/null
    ) &
    launcher=$!
    local rc=0
    wait_until 120 "RabbitMQ on :$AMQP_PORT/:$MGMT_PORT" "$launcher" \
        bash -c "(exec 3<>/dev/tcp/$HOST/$AMQP_PORT && exec 4<>/dev/tcp/$HOST/$MGMT_PORT) 2>/dev/null" || rc=$?
    if (( rc != 0 )); then
        say "RabbitMQ failed to start; last lines of its logs:"
        tail -n 25 "$LOGS/rabbitmq.out" "$LOGS/$NODE.log" 2>/dev/null >&2 || true
        local pid
        if pid="$(rabbit_pid)"; then kill -TERM "$pid" 2>/dev/null || true; fi
        exit 1
    fi
    # listeners are up; make sure the boot has completed as well
    ( rabbit_env; "$RABBIT_BIN/rabbitmqctl" -q -n "$NODE" wait "$RMQ_PIDFILE" --timeout 60 >/dev/null ) \
        || die "rabbitmqctl wait failed for $NODE; see $LOGS"
    STARTED+=(rabbitmq)
}

rabbit_down() {
    local pid
    if ! pid="$(rabbit_pid)"; then
        rm -f "$RMQ_PIDFILE"
        say "RabbitMQ $NODE: not running"
        return 0
    fi
    say "stopping RabbitMQ $NODE (pid $pid)"
    # SIGTERM makes the node shut down gracefully (same path as 'rabbitmqctl stop'),
    # without the second or two an Erlang CLI needs to boot.
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_until 60 "RabbitMQ $NODE to stop" "" bash -c "! kill -0 $pid 2>/dev/null"; then
        say "RabbitMQ did not stop in 60s; killing pid $pid"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$RMQ_PIDFILE"
}

# ---------------------------------------------------------------- ferretdb

ferretdb_up() {  # appends 'ferretdb' to STARTED if it had to start it
    local pid
    if pid="$(ferretdb_pid)"; then
        if [[ "$(cmdline "$pid")" != *"--handler=$BACKEND "* ]]; then
            die "FerretDB of profile '$PROFILE' (pid $pid) runs another backend than ZHIFA_FERRETDB_BACKEND=$BACKEND;
       stop it first: scripts/infra.sh down $PROFILE ferretdb"
        fi
        if [[ "$BACKEND" == postgresql ]]; then pg_up; fi
        if port_open $HOST "$MONGO_PORT"; then return 0; fi
        wait_until 30 "FerretDB on :$MONGO_PORT" "$pid" port_open $HOST "$MONGO_PORT" \
            || die "FerretDB (pid $pid) does not answer on :$MONGO_PORT; see $LOGS/ferretdb.log"
        return 0
    fi
    local other
    if other="$(ferretdb_other_checkout)"; then
        say "using FerretDB on :$MONGO_PORT of another checkout (pid ${other%% *}, data ${other#* }); not starting one"
        return 0
    fi
    [[ -x "$FERRETDB_BIN" ]] || die "FerretDB binary missing ($FERRETDB_BIN); run scripts/bootstrap.sh"
    local port
    for port in "$MONGO_PORT" "$FDEBUG_PORT"; do
        if port_open $HOST "$port"; then
            die "port $port is already in use by another process ($(port_owner "$port")), not by this profile's FerretDB.
       Stop it, choose other ports (ZHIFA_MONGO_PORT/ZHIFA_FERRETDB_DEBUG_PORT), or use it: export MONGO_URI=mongodb://$HOST:$MONGO_PORT/"
        fi
    done
    mkdir -p "$FER_DIR" "$LOGS" "$PIDS"
    rm -f "$FER_PIDFILE"
    local backend_args
    if [[ "$BACKEND" == postgresql ]]; then
        pg_up
        backend_args=(--handler=postgresql --postgresql-url="$PG_URL")
        say "starting FerretDB (Mongo :$MONGO_PORT, PostgreSQL cluster $PG_DATA)"
    else
        # WAL + synchronous(normal): consistent after any crash, may lose the last commits on power loss;
        # ~1.5x faster writes. A local dev/test server; production uses MongoDB. ZHIFA_SQLITE_SYNC=full to change.
        # temp_store(memory): a statement's rollback journal stays in memory instead of spilling to a temporary
        # file past 64 KiB (a file opened, written 4 bytes + a page at a time, unlinked; thirty-sixth session).
        local SQLITE_SYNC="${ZHIFA_SQLITE_SYNC:-normal}"
        backend_args=(--handler=sqlite --sqlite-url="file:$FER_DIR/?_pragma=synchronous($SQLITE_SYNC)&_pragma=temp_store(memory)")
        say "starting FerretDB (Mongo :$MONGO_PORT, data $FER_DIR, sqlite synchronous=$SQLITE_SYNC)"
    fi
    (
        cd "$FER_DIR"
        close_extra_fds
        # GC: FerretDB's live heap is a few MB, so the default GOGC=100 collected every few MB
        # allocated (decoding stored documents allocates a lot): at 400 the server spends about a
        # third less CPU per command for ~20 MB more RSS; GOMEMLIMIT caps the heap a large result grows.
        export GOGC="${ZHIFA_FERRETDB_GOGC:-400}" GOMEMLIMIT="${ZHIFA_FERRETDB_GOMEMLIMIT:-512MiB}"
        # the inner shell records its own pid, then becomes ferretdb
        exec setsid nohup sh -c 'echo $$ > "$0"; exec "$@"' "$FER_PIDFILE" \
            "$FERRETDB_BIN" "${backend_args[@]}" \
            --listen-addr="$HOST:$MONGO_PORT" --debug-addr="$HOST:$FDEBUG_PORT" \
            --state-dir="$FER_DIR" --telemetry=disable --log-level=warn \
            >>"$LOGS/ferretdb.log" 2>&1 </dev/null
    ) &
    local launcher=$! rc=0
    wait_until 30 "FerretDB on :$MONGO_PORT" "$launcher" port_open $HOST "$MONGO_PORT" || rc=$?
    if (( rc != 0 )); then
        say "FerretDB failed to start; last lines of $LOGS/ferretdb.log:"
        tail -n 25 "$LOGS/ferretdb.log" >&2 || true
        [[ $rc == 1 ]] && kill "$launcher" 2>/dev/null || true
        exit 1
    fi
    STARTED+=(ferretdb)
}

ferretdb_down() {
    local pid
    if ! pid="$(ferretdb_pid)"; then
        rm -f "$FER_PIDFILE"
        say "FerretDB ($PROFILE): not running"
        return 0
    fi
    say "stopping FerretDB (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_until 20 "FerretDB to stop" "" bash -c "! kill -0 $pid 2>/dev/null"; then
        say "FerretDB did not stop in 20s; killing pid $pid"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$FER_PIDFILE"
}

# ---------------------------------------------------------------- postgresql (FerretDB's backend)

pg_bin() {  # the newest Debian PostgreSQL server binaries
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
    [[ -n "$d" && -x "$d/postgres" ]] || die "PostgreSQL is not installed; run: scripts/bootstrap.sh postgresql"
    echo "$d"
}

# PostgreSQL refuses to run as root: as root, its commands run as the package's `postgres` user
as_pg() {
    if [[ "$(id -u)" == 0 ]]; then
        getent passwd postgres >/dev/null || die "running as root needs the 'postgres' user (Debian package postgresql)"
        setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
    else
        "$@"
    fi
}

pg_pid() {  # the postmaster of this profile's cluster, from its postmaster.pid
    local pid
    [[ -f "$PG_DATA/postmaster.pid" ]] || return 1
    pid="$(head -n1 "$PG_DATA/postmaster.pid" | tr -dc '0-9')"
    alive "$pid" && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == postgres ]] && echo "$pid"
}

pg_ready() { [[ -S "$PG_DIR/.s.PGSQL.$PG_PORT" ]] && as_pg "$1/pg_isready" -q -h "$PG_DIR" -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB"; }

pg_up() {  # appends 'postgresql' to STARTED if it had to start the cluster
    local bin pid
    bin="$(pg_bin)"
    if pid="$(pg_pid)"; then
        wait_until 30 "PostgreSQL in $PG_DATA" "$pid" pg_ready "$bin" \
            || die "PostgreSQL (pid $pid) does not answer on $PG_DIR; see $LOGS/postgresql.log"
        return 0
    fi
    mkdir -p "$PG_DIR" "$LOGS" "$PIDS"
    chmod 700 "$PG_DIR"
    [[ "$(id -u)" == 0 ]] && chown postgres: "$PG_DIR"
    if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
        say "creating the PostgreSQL cluster of profile '$PROFILE' in $PG_DATA (initdb)"
        rm -rf "$PG_DATA"
        as_pg "$bin/initdb" -D "$PG_DATA" -U "$PG_USER" --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
            >>"$LOGS/postgresql-initdb.log" 2>&1 || die "initdb failed; see $LOGS/postgresql-initdb.log"
    fi
    touch "$LOGS/postgresql.log"
    [[ "$(id -u)" == 0 ]] && chown postgres: "$LOGS/postgresql.log"
    local sync="${ZHIFA_PG_SYNC_COMMIT:-off}"
    # autovacuum_naptime 5 s (default 1 min): the services create their indexes on empty collections,
    # which leaves the planner believing a table has a row or two; until autoanalyze runs, every _id
    # lookup is a sequential scan that detoasts each document (docs/benchmark.md, "FerretDB backend")
    say "starting PostgreSQL ($PG_DATA, socket in $PG_DIR, synchronous_commit=$sync)"
    local run=()
    [[ "$(id -u)" == 0 ]] && run=(setpriv --reuid=postgres --regid=postgres --init-groups --)
    (
        close_extra_fds
        exec setsid nohup "${run[@]}" "$bin/postgres" -D "$PG_DATA" -c listen_addresses= \
            -c unix_socket_directories="$PG_DIR" -c port="$PG_PORT" -c synchronous_commit="$sync" \
            -c autovacuum_naptime=5s -c logging_collector=off >>"$LOGS/postgresql.log" 2>&1 </dev/null
    ) &
    local launcher=$! rc=0
    wait_until 60 "PostgreSQL in $PG_DATA" "$launcher" pg_ready "$bin" || rc=$?
    if (( rc != 0 )); then
        say "PostgreSQL failed to start; last lines of $LOGS/postgresql.log:"
        tail -n 25 "$LOGS/postgresql.log" >&2 || true
        exit 1
    fi
    if [[ ! -f "$PG_DATA/zhifa-db-created" ]]; then
        as_pg "$bin/createdb" -h "$PG_DIR" -p "$PG_PORT" -U "$PG_USER" "$PG_DB" 2>>"$LOGS/postgresql.log" \
            || as_pg "$bin/psql" -h "$PG_DIR" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
                "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -qx 1 \
            || die "could not create database $PG_DB; see $LOGS/postgresql.log"
        as_pg touch "$PG_DATA/zhifa-db-created"
    fi
    STARTED+=(postgresql)
}

pg_down() {
    local pid
    if ! pid="$(pg_pid)"; then
        return 0
    fi
    say "stopping PostgreSQL (pid $pid)"
    kill -INT "$pid" 2>/dev/null || true    # fast shutdown: abort sessions, checkpoint, exit
    if ! wait_until 30 "PostgreSQL to stop" "" bash -c "! kill -0 $pid 2>/dev/null"; then
        say "PostgreSQL did not stop in 30s; sending SIGQUIT to pid $pid"
        kill -QUIT "$pid" 2>/dev/null || true
    fi
}

# ---------------------------------------------------------------- commands

# derive the management URI from an externally given AMQP URI (same credentials and host, port 15672)
mgmt_from_amqp() {
    local re='^amqps?://(([^@/]*)@)?([^:/?]+)'
    if [[ "$1" =~ $re ]]; then
        local cred="${BASH_REMATCH[2]:-guest:guest}"
        printf 'http://%s@%s:15672' "$cred" "${BASH_REMATCH[3]}"
    fi
}

# export KEY='value' - safe for eval, and trivial to parse (tests/conftest.py strips the quotes)
emit() { printf "export %s='%s'\n" "$1" "${2//\'/\'\\\'\'}"; }

with_lock() {
    mkdir -p "$P"
    if command -v flock >/dev/null; then
        exec 9>"$P/.lock"
        flock -w 300 9 || die "another scripts/infra.sh holds $P/.lock for more than 300s"
    fi
}

cmd_up() {
    with_lock
    local amqp="${AMQP_URI:-}" mongo="${MONGO_URI:-}" mgmt="${RABBIT_MGMT_URI:-}"
    if wants rabbitmq; then
        if [[ -n "$amqp" ]]; then
            say "AMQP_URI is set; using it and not starting RabbitMQ"
            [[ -n "$mgmt" ]] || mgmt="$(mgmt_from_amqp "$amqp")"
        else
            rabbit_up
            amqp="$OWN_AMQP_URI" mgmt="$OWN_MGMT_URI"
            emit RABBIT_PROMETHEUS_URI "http://$HOST:$RPROM_PORT/metrics"
        fi
    fi
    if wants ferretdb; then
        if [[ -n "$mongo" ]]; then
            say "MONGO_URI is set; using it and not starting FerretDB"
        else
            ferretdb_up
            mongo="$OWN_MONGO_URI"
        fi
    fi
    if [[ ${#STARTED[@]} -gt 0 ]]; then say "$PROFILE: started ${STARTED[*]}"; fi
    if [[ -n "$amqp" ]]; then emit AMQP_URI "$amqp"; fi
    if [[ -n "$mgmt" ]]; then emit RABBIT_MGMT_URI "$mgmt"; fi
    if [[ -n "$mongo" ]]; then emit MONGO_URI "$mongo"; fi
    emit ZHIFA_PROFILE "$PROFILE"
    emit ZHIFA_INFRA_STARTED "${STARTED[*]:-}"
}

cmd_down() {
    with_lock
    if wants ferretdb; then ferretdb_down; fi
    # the cluster serves FerretDB only: stopped with it when the component list is the default
    if wants postgresql || { wants ferretdb && [[ ${#ARGS_GIVEN[@]} -eq 0 ]]; }; then pg_down; fi
    if wants rabbitmq; then rabbit_down; fi
}

cmd_env() {
    emit AMQP_URI "${AMQP_URI:-$OWN_AMQP_URI}"
    emit RABBIT_MGMT_URI "${RABBIT_MGMT_URI:-$OWN_MGMT_URI}"
    emit RABBIT_PROMETHEUS_URI "${RABBIT_PROMETHEUS_URI:-http://$HOST:$RPROM_PORT/metrics}"
    emit MONGO_URI "${MONGO_URI:-$OWN_MONGO_URI}"
    emit ZHIFA_PROFILE "$PROFILE"
}

cmd_status() {
    local pid state other
    printf 'profile %s (%s)\n' "$PROFILE" "$P"
    if pid="$(rabbit_pid)"; then
        state="running, pid $pid"
        port_open $HOST "$AMQP_PORT" || state="$state, NOT answering on :$AMQP_PORT"
    elif other="$(rabbit_other_checkout)"; then state="another checkout's, pid ${other%% *} (${other#* })"
    elif port_open $HOST "$AMQP_PORT"; then state="stopped (port $AMQP_PORT used by another process)"
    else state="stopped"; fi
    printf '  rabbitmq  %-40s %s  %s  node %s\n' "$state" "$OWN_AMQP_URI" "$OWN_MGMT_URI" "$NODE"
    if pid="$(ferretdb_pid)"; then
        state="running, pid $pid"
        port_open $HOST "$MONGO_PORT" || state="$state, NOT answering on :$MONGO_PORT"
    elif other="$(ferretdb_other_checkout)"; then state="another checkout's, pid ${other%% *} (${other#* })"
    elif port_open $HOST "$MONGO_PORT"; then state="stopped (port $MONGO_PORT used by another process)"
    else state="stopped"; fi
    local handler=""
    if pid="$(ferretdb_pid)"; then handler="$(sed -n 's/.*--handler=\([a-z]*\).*/\1/p' <<<"$(cmdline "$pid")")"; fi
    printf '  ferretdb  %-40s %s%s\n' "$state" "$OWN_MONGO_URI" "${handler:+  backend $handler}"
    if pid="$(pg_pid)"; then
        printf '  postgres  %-40s %s\n' "running, pid $pid" "$PG_URL"
    elif [[ -d "$PG_DATA" ]]; then
        printf '  postgres  %-40s %s\n' "stopped" "$PG_DATA"
    fi
}

case "$CMD" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *) usage ;;
esac
