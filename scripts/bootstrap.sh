#!/usr/bin/env bash
# One-time (and idempotent) machine set-up for running Zhifa without Docker.
#
#   scripts/bootstrap.sh [venv] [rabbitmq] [ferretdb] [monitor] [docs] [console] [browser] [postgresql]
#
# Default: venv rabbitmq ferretdb monitor docs console. Every step checks first and does nothing when already done,
# so a second run takes a fraction of a second (no apt, no go build, no pip):
#   venv      .venv + `pip install -c constraints.txt -e '.[dev]'` + the department plugin distributions plugins/wjj, plugins/jtj
#             (editable); redone when pyproject.toml (or a plugin's) or constraints.txt is newer than the stamp.
#             Its interpreter: PYTHON when set, else Debian's python3.11 (Debian packages python3.11 and
#             python3.11-venv, installed when missing; built with PGO and LTO, as the Docker image's python:3.11 is),
#             else python3. A .venv made by another interpreter is made again (docs/benchmark.md, forty-fourth session)
#   rabbitmq  Debian package rabbitmq-server, only if /usr/lib/rabbitmq/bin/rabbitmq-server is
#             missing (skipped when AMQP_URI is set: an external broker is used)
#   ferretdb  patched FerretDB binary in .run/bin (infra/ferretdb/build.sh; skipped when MONGO_URI
#             is set)
#   monitor   Debian prometheus (promtool for the alert-rule tests; the server for `make monitor`),
#             only if /usr/bin/promtool is missing
#   docs      documents (文书) to PDF: Debian libreoffice-writer-nogui (headless LibreOffice),
#             fonts-noto-cjk (CJK fonts embedded in the PDFs), poppler-utils (pdftotext/pdftoppm
#             for the PDF tests); only if soffice, pdftotext or the Noto CJK fonts are missing.
#             Measured on a fresh Debian 12 VM: see docs/documents.md
#   console   the justice bureau's console (console/): `npm ci` + `npm run build` into console/dist, served
#             by the API at `/`; skipped when the lock file and sources are unchanged since the last
#             build (stamp: a digest of console/package-lock.json and console/src, index.html, vite.config.js)
#   browser   Debian chromium for the browser tests (not part of the default set); Playwright
#             must be pointed at it: executable_path="/usr/bin/chromium"
#   postgresql Debian postgresql for FerretDB's PostgreSQL backend (ZHIFA_FERRETDB_BACKEND=postgresql,
#             scripts/infra.sh runs a private cluster per profile; the package's system service is
#             stopped); only if no /usr/lib/postgresql/*/bin/initdb is found. In the default set only
#             when ZHIFA_FERRETDB_BACKEND=postgresql
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Debian's CPython 3.11 where there is apt-get (its build is optimised with PGO and LTO; the pyenv CPython met on
# these machines is not, and runs the suite's services ≈ 5% slower: docs/benchmark.md, forty-fourth session)
DEBIAN_PYTHON=/usr/bin/python3.11
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$DEBIAN_PYTHON" ]] || command -v apt-get >/dev/null; then PYTHON="$DEBIAN_PYTHON"; else PYTHON=python3; fi
fi
STAMPS="$ROOT/.run/stamps"
RABBIT_SERVER="${RABBITMQ_BIN_DIR:-/usr/lib/rabbitmq/bin}/rabbitmq-server"

say() { printf 'zhifa: %s\n' "$*" >&2; }
die() { printf 'zhifa: ERROR: %s\n' "$*" >&2; exit 1; }

STEPS=("$@")
[[ ${#STEPS[@]} -gt 0 ]] || STEPS=(venv rabbitmq ferretdb monitor docs console)
if [[ $# -eq 0 && "${ZHIFA_FERRETDB_BACKEND:-sqlite}" == postgresql && -z "${MONGO_URI:-}" ]]; then
    STEPS+=(postgresql)
fi

mkdir -p "$STAMPS"
if command -v flock >/dev/null; then
    exec 9>"$ROOT/.run/bootstrap.lock"
    flock -w 900 9 || die "another bootstrap holds .run/bootstrap.lock"
fi

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null && SUDO=(sudo) || true
fi
APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null || die "apt-get not found: install $* by hand (this script targets Debian/Ubuntu)"
    if [[ $APT_UPDATED == 0 ]]; then
        say "apt-get update"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

# The interpreter a venv was made with (its real path), or nothing when there is no working venv.
venv_base() {
    .venv/bin/python -c 'import os, sys; print(os.path.realpath(sys._base_executable))' 2>/dev/null || true
}

step_venv() {
    local stamp="$STAMPS/venv" want have
    [[ -f pyproject.toml ]] || die "pyproject.toml not found in $ROOT"
    if [[ "$PYTHON" == "$DEBIAN_PYTHON" && ! -x "$DEBIAN_PYTHON" ]]; then
        apt_install python3.11 python3.11-venv
    fi
    # the interpreter's own answer (a pyenv shim on PATH is a script that runs the real one)
    want="$("$PYTHON" -c 'import os, sys; print(os.path.realpath(sys.executable))' 2>/dev/null)" \
        || die "Python interpreter '$PYTHON' not found or does not start"
    have="$(venv_base)"  # empty: no working .venv
    if [[ "$have" == "$want" && -f "$stamp" && "$stamp" -nt pyproject.toml && "$stamp" -nt constraints.txt \
          && "$stamp" -nt plugins/wjj/pyproject.toml && "$stamp" -nt plugins/jtj/pyproject.toml ]]; then
        return 0
    fi
    if [[ -n "$have" && "$have" != "$want" ]]; then
        say "re-creating .venv: it runs $have, the interpreter chosen is $want"
        have=""
    fi
    if [[ -z "$have" ]]; then
        say "creating .venv with $("$PYTHON" --version 2>&1) ($want)"
        rm -f "$stamp"  # (an install stopped halfway must not pass for done next time)
        rm -rf .venv
        if ! "$PYTHON" -m venv .venv >/dev/null 2>&1; then
            # Debian's own python3 ships venv/ensurepip separately (python3-venv brings python3.11-venv)
            rm -rf .venv
            apt_install python3-venv
            "$PYTHON" -m venv .venv
        fi
    fi
    # constraints.txt: the versions the suite is tested with (a fresh clone installs those, not the newest)
    say "installing Python dependencies into .venv (pip install -c constraints.txt -e '.[dev]')"
    .venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'
    # the 卫健 and 交通 department plugins are distributions of their own (entry points zhifa.plugins:
    # wjj, jtj); editable, so the services, make run and the simulator use the checkout's code
    say "installing the department plugin distributions plugins/wjj and plugins/jtj into .venv (editable)"
    .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e plugins/wjj -e plugins/jtj
    touch "$stamp"
}

step_rabbitmq() {
    if [[ -n "${AMQP_URI:-}" ]]; then return 0; fi
    if [[ -x "$RABBIT_SERVER" ]]; then return 0; fi
    say "installing RabbitMQ (Debian package rabbitmq-server, first time)"
    apt_install rabbitmq-server
    [[ -x "$RABBIT_SERVER" ]] || die "rabbitmq-server installed but $RABBIT_SERVER is missing"
    # On a machine with systemd the package starts a system-wide node on 5672/25672, which would
    # collide with the project's own 'run' profile. The project runs its own nodes; stop that one.
    if command -v systemctl >/dev/null && systemctl is-active --quiet rabbitmq-server 2>/dev/null; then
        say "disabling the system-wide rabbitmq-server service the package just started (the project runs its own nodes)"
        "${SUDO[@]}" systemctl disable --now rabbitmq-server >/dev/null 2>&1 || true
    fi
}

step_ferretdb() {
    if [[ -n "${MONGO_URI:-}" ]]; then return 0; fi
    command -v patch >/dev/null || apt_install patch
    "$ROOT/infra/ferretdb/build.sh"
}

step_monitor() {
    if [[ -x /usr/bin/promtool && -x /usr/bin/prometheus ]]; then return 0; fi
    say "installing Prometheus (Debian package prometheus: promtool for the alert tests, the server for make monitor)"
    apt_install --no-install-recommends prometheus
    if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
        "${SUDO[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
}

step_docs() {
    if command -v soffice >/dev/null && command -v pdftotext >/dev/null && command -v pdftoppm >/dev/null \
        && compgen -G '/usr/share/fonts/opentype/noto/NotoSerifCJK-*' >/dev/null; then
        return 0
    fi
    say "installing LibreOffice (headless Writer), Noto CJK fonts and poppler-utils for documents (文书) PDF rendering"
    apt_install --no-install-recommends libreoffice-writer-nogui fonts-noto-cjk poppler-utils
}

step_console() {
    local stamp="$STAMPS/console" digest
    [[ -f console/package-lock.json ]] || die "console/package-lock.json not found"
    digest="$(cd console && find src index.html vite.config.js package.json package-lock.json -type f -print0 \
        | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
    if [[ -f console/dist/index.html && -f "$stamp" && "$(cat "$stamp")" == "$digest" ]]; then
        return 0
    fi
    command -v npm >/dev/null || apt_install nodejs npm
    say "building the console (npm ci + npm run build in console/)"
    (cd console && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm run build >/dev/null) \
        || die "console build failed: run (cd console && npm ci && npm run build) to see why"
    printf '%s\n' "$digest" >"$stamp"
}

# the newest Debian PostgreSQL server binaries (initdb, postgres, pg_ctl), or nothing
pg_bindir() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
    [[ -n "$d" && -x "$d/initdb" && -x "$d/postgres" ]] && echo "$d"
}

step_postgresql() {
    if pg_bindir >/dev/null; then return 0; fi
    say "installing PostgreSQL (Debian package postgresql) for FerretDB's PostgreSQL backend"
    apt_install --no-install-recommends postgresql
    pg_bindir >/dev/null || die "postgresql installed but no /usr/lib/postgresql/*/bin/initdb found"
    # the package creates and starts a system cluster on :5432; the project runs its own clusters
    if command -v systemctl >/dev/null && systemctl is-active --quiet postgresql 2>/dev/null; then
        say "disabling the system-wide postgresql service the package just started (the project runs its own clusters)"
        "${SUDO[@]}" systemctl disable --now postgresql >/dev/null 2>&1 || true
    fi
}

step_browser() {
    if [[ -x /usr/bin/chromium ]]; then return 0; fi
    say "installing Debian chromium for the browser tests (Playwright: executable_path=/usr/bin/chromium)"
    apt_install chromium
}

# each step is timed: a line for a step that took a second or more (it did work), and one summary line
# with every step's seconds (a prepared machine: all near 0)
TIMES=()
elapsed_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
for step in "${STEPS[@]}"; do
    started="$EPOCHREALTIME"
    case "$step" in
        venv) step_venv ;;
        rabbitmq) step_rabbitmq ;;
        ferretdb) step_ferretdb ;;
        monitor) step_monitor ;;
        docs) step_docs ;;
        console) step_console ;;
        browser) step_browser ;;
        postgresql) step_postgresql ;;
        *) die "unknown step '$step' (venv|rabbitmq|ferretdb|monitor|docs|console|browser|postgresql)" ;;
    esac
    took="$(elapsed_since "$started")"
    TIMES+=("$step $took")
    if [[ "${took%.*}" -ge 1 ]]; then say "bootstrap step $step: ${took} s"; fi
done
say "bootstrap (s): $(IFS=,; echo "${TIMES[*]}" | sed 's/,/, /g')"
