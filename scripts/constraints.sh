#!/usr/bin/env bash
# Write constraints.txt from .venv: the Python package versions the suite is tested with (`make constraints`).
# Run it after an intended upgrade (`.venv/bin/python -m pip install -U <package>`), then `make test`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
[[ -x .venv/bin/python ]] || { echo "constraints: no .venv (make venv first)" >&2; exit 1; }
tmp="$(mktemp constraints.txt.XXXXXX)"
trap 'rm -f "$tmp"' EXIT
{
    cat <<'HEADER'
# Python package versions the suite is tested with: scripts/bootstrap.sh and infra/docker/Dockerfile
# install pyproject.toml's dependencies with `pip install -c constraints.txt`, so a fresh clone gets these
# versions, not whatever was released since (a new release once changed a fresh clone's warnings).
# Constraints, not requirements: a package not listed here is resolved freely (another Python version
# may need one). After an intended upgrade of .venv: `make constraints` writes this file anew.
HEADER
    # --all keeps wheel (a dev dependency); pip and setuptools are the venv's own (ensurepip), not pinned
    .venv/bin/python -m pip freeze --all --exclude-editable --disable-pip-version-check | grep -viE '^(pip|setuptools)=='
} > "$tmp"
mv "$tmp" constraints.txt
trap - EXIT
echo "constraints.txt: $(grep -vc '^#' constraints.txt) packages"
