#!/usr/bin/env bash
# Build the patched FerretDB binary used by the local (non-Docker) set-up.
#
#   infra/ferretdb/build.sh [OUTPUT]        (default OUTPUT: .run/bin/ferretdb)
#
# `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.0` does not work behind a module
# proxy that refuses the @v/list request (used for the deprecation check), so the module source
# is fetched with `go mod download` from a scratch module, copied to a writable directory,
# given its build/version/version.txt (the binary panics at start without it), patched with
# every infra/ferretdb/*.patch (in name order) and built. A patch may also change a dependency:
# its paths then start with zhifa/<copy>/ (0007: zhifa/modernc-sqlite/, the SQLite driver; 0013:
# zhifa/modernc-memory/, the driver's C allocator), and
# the build copies that module into the source tree and points FerretDB's go.mod at the copy.
#
# Idempotent: does nothing when OUTPUT exists and its stamp (FerretDB version + sha256 of the
# patches and of this script) matches. FORCE=1 rebuilds. A copy of each build is kept in
# ${ZHIFA_CACHE_DIR:-~/.cache/zhifa}/ferretdb/<stamp hash>/, so a fresh clone on the same machine
# (CI runs in one) gets the binary without building.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
FERRETDB_VERSION="${FERRETDB_VERSION:-v1.24.0}"
MODULE="github.com/FerretDB/FerretDB"
OUT="${1:-$ROOT/.run/bin/ferretdb}"
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
BUILD="$ROOT/.run/build"
STAMP="$OUT.stamp"

say() { printf 'zhifa: %s\n' "$*" >&2; }
die() { printf 'zhifa: ERROR: %s\n' "$*" >&2; exit 1; }

shopt -s nullglob
PATCHES=("$HERE"/*.patch)
shopt -u nullglob

want_stamp() {
    {
        echo "ferretdb $FERRETDB_VERSION"
        # the build recipe itself is part of the stamp so a changed recipe rebuilds
        sha256sum "$HERE/build.sh" | cut -d' ' -f1
        for p in "${PATCHES[@]}"; do
            printf '%s %s\n' "$(sha256sum "$p" | cut -d' ' -f1)" "$(basename "$p")"
        done
    }
}

if [[ "${FORCE:-0}" != 1 && -x "$OUT" && -f "$STAMP" ]] && [[ "$(want_stamp)" == "$(cat "$STAMP")" ]]; then
    exit 0
fi

CACHE_BASE="${ZHIFA_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/zhifa}"
CACHE="$CACHE_BASE/ferretdb/$(want_stamp | sha256sum | cut -c1-16)"
if [[ "${FORCE:-0}" != 1 && -x "$CACHE/ferretdb" ]] && "$CACHE/ferretdb" --version >/dev/null 2>&1; then
    mkdir -p "$(dirname "$OUT")"
    cp -f "$CACHE/ferretdb" "$OUT.tmp" && mv -f "$OUT.tmp" "$OUT"
    want_stamp > "$STAMP"
    say "FerretDB $FERRETDB_VERSION (patched) taken from the build cache $CACHE"
    exit 0
fi

GO="${GO:-$(command -v go || true)}"
[[ -n "$GO" ]] || GO=/usr/local/go/bin/go
[[ -x "$GO" ]] || die "Go toolchain not found (looked for 'go' on PATH and /usr/local/go/bin/go); install Go >= 1.22 or set GO=/path/to/go"
command -v patch >/dev/null || die "'patch' not found (apt-get install -y patch)"

if [[ -x "$OUT" ]]; then
    say "rebuilding FerretDB $FERRETDB_VERSION (patches or build recipe changed)"
else
    say "building FerretDB $FERRETDB_VERSION (first time, ~2 min)"
fi

mkdir -p "$BUILD/ferretdb-mod" "$(dirname "$OUT")"

# 1. fetch the module source into the module cache via a scratch module
cd "$BUILD/ferretdb-mod"
[[ -f go.mod ]] || "$GO" mod init fbuild >/dev/null 2>&1
if ! json="$("$GO" mod download -json "$MODULE@$FERRETDB_VERSION")"; then
    printf '%s\n' "$json" >&2
    die "go mod download $MODULE@$FERRETDB_VERSION failed"
fi
dir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir":[[:space:]]*"\(.*\)",\{0,1\}[[:space:]]*$/\1/p' | head -n1)"
[[ -n "$dir" && -d "$dir" ]] || { printf '%s\n' "$json" >&2; die "no module directory in 'go mod download -json' output"; }

# 2. writable copy (fixed path, so Go's build cache is reused across rebuilds)
SRC="$BUILD/ferretdb-src"
rm -rf "$SRC" "$SRC.tmp"
cp -R "$dir" "$SRC.tmp"
chmod -R u+w "$SRC.tmp"
printf '%s\n' "$FERRETDB_VERSION" > "$SRC.tmp/build/version/version.txt"
printf '%s\n' "zhifa-local" > "$SRC.tmp/build/version/package.txt"
mv "$SRC.tmp" "$SRC"

# 2b. a third-party module one of our patches changes (its paths start with zhifa/<copy>/) is copied
#     from the module cache into the source tree and used in place of the original (go.mod replace)
for m in "modernc.org/sqlite=zhifa/modernc-sqlite" "modernc.org/memory=zhifa/modernc-memory" \
         "github.com/FerretDB/wire=zhifa/ferretdb-wire"; do
    mod="${m%%=*}" rel="${m#*=}"
    grep -q "^+++ b/$rel/" "${PATCHES[@]}" /dev/null || continue
    ver="$(awk -v m="$mod" '$1 == m || ($1 == "require" && $2 == m) { print ($1 == m) ? $2 : $3; exit }' "$SRC/go.mod")"
    [[ -n "$ver" ]] || die "$mod is not required by FerretDB $FERRETDB_VERSION's go.mod"
    if ! mjson="$(cd "$BUILD/ferretdb-mod" && "$GO" mod download -json "$mod@$ver")"; then
        printf '%s\n' "$mjson" >&2
        die "go mod download $mod@$ver failed"
    fi
    mdir="$(printf '%s\n' "$mjson" | sed -n 's/^[[:space:]]*"Dir":[[:space:]]*"\(.*\)",\{0,1\}[[:space:]]*$/\1/p' | head -n1)"
    [[ -n "$mdir" && -d "$mdir" ]] || die "no module directory for $mod@$ver"
    mkdir -p "$SRC/$(dirname "$rel")"
    cp -R "$mdir" "$SRC/$rel"
    chmod -R u+w "$SRC/$rel"
    (cd "$SRC" && "$GO" mod edit "-replace=$mod=./$rel")
    say "using a patched copy of $mod $ver"
done

# 3. patches
cd "$SRC"
for p in "${PATCHES[@]}"; do
    say "applying $(basename "$p")"
    patch -p1 --forward --batch --quiet < "$p" || die "patch $(basename "$p") does not apply to FerretDB $FERRETDB_VERSION"
done

# 3b. the Go tests of the packages our patches change most (0018's scanner, 0019's encoders and 0021's
#     scalar decoders against encoding/json, 0022's schema, 0023's values and 0025's schema reader against
#     FerretDB's own code, FerretDB's own sjson tests; 0021's query log and missing-key error; 0029's parameters
#     against FerretDB's own tests of them, and its remembered names): a patch that changes what is stored or
#     answered fails the build
say "testing internal/handler/sjson, internal/util/fsql, internal/types, internal/handler/handlerparams and the name checks (patches 0018, 0019, 0021–0023, 0025, 0029)"
CGO_ENABLED=0 "$GO" test -buildvcs=false -count=1 ./internal/handler/sjson/ ./internal/util/fsql/ ./internal/types/ \
    ./internal/handler/handlerparams/ >&2 \
    && CGO_ENABLED=0 "$GO" test -buildvcs=false -count=1 -run 'TestZhifa' ./internal/backends/ >&2 \
    || die "FerretDB's tests of the patched packages fail with the patches applied"
# 3c. the wire module's tests, its patched copy's (0020's fast check against DecodeDeep and the NaN check,
#     and the module's own message tests)
if [[ -d "$SRC/zhifa/ferretdb-wire" ]]; then
    say "testing github.com/FerretDB/wire (patch 0020)"
    CGO_ENABLED=0 "$GO" test -buildvcs=false -count=1 github.com/FerretDB/wire >&2 \
        || die "the wire module's tests fail with the patches applied"
fi

# 3d. the SQLite driver copy's tests of 0024 (the WAL written a run of frames at a time holds the frames
#     written one by one, and recovers from a crash to the rows written), 0026 (the statement cache keeps
#     the recently used) and 0028 (no goroutine per statement; a canceled context still interrupts)
if [[ -f "$SRC/zhifa/modernc-sqlite/zhifa_wal_frames_test.go" ]]; then
    say "testing modernc.org/sqlite's WAL frames, statement cache and interrupts (patches 0024, 0026, 0028)"
    CGO_ENABLED=0 "$GO" test -buildvcs=false -count=1 -run 'TestZhifa' modernc.org/sqlite >&2 \
        || die "the SQLite driver's tests of the patches fail with the patches applied"
fi

# 4. build (pure Go SQLite driver; no cgo needed). -buildvcs=false: the copy lives inside the
#    project's git work tree, whose VCS state must not be stamped into FerretDB.
CGO_ENABLED=0 "$GO" build -buildvcs=false -trimpath -o "$OUT.tmp" ./cmd/ferretdb
"$OUT.tmp" --version >/dev/null 2>&1 || die "built binary does not start ($OUT.tmp --version failed)"
mv -f "$OUT.tmp" "$OUT"
want_stamp > "$STAMP"
if mkdir -p "$CACHE" 2>/dev/null && cp -f "$OUT" "$CACHE/ferretdb.tmp" 2>/dev/null; then
    mv -f "$CACHE/ferretdb.tmp" "$CACHE/ferretdb"
fi
say "FerretDB $FERRETDB_VERSION built: $OUT"
