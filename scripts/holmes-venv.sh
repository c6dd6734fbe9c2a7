#!/usr/bin/env bash
# Create (once) a virtualenv with HolmesGPT, for tests/render/test_holmesgpt_loads.py,
# and print its interpreter on stdout -- the value for DYNTOOLSET_HOLMES_PYTHON:
#
#   export DYNTOOLSET_HOLMES_PYTHON="$(scripts/holmes-venv.sh)"
#
# HolmesGPT is never installed into the development venv: it pins kubernetes<33
# (dyntoolset needs 37.x) and brings a few hundred packages of its own.
#
# Usage: scripts/holmes-venv.sh [VENV_DIR]       (default: .holmes-venv in the repo)
# Environment: HOLMES_VERSION (default 0.45.0), PYTHON (default python3; holmesgpt
# needs 3.10-3.13).
# Idempotent: an existing venv with the wanted version is reused as is.
set -euo pipefail

version="${HOLMES_VERSION:-0.45.0}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo/.holmes-venv}"
python="${PYTHON:-python3}"
interpreter="$venv/bin/python"

installed() {
    [ -x "$interpreter" ] && "$interpreter" - "$version" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version

sys.exit(version("holmesgpt") != sys.argv[1])
PY
}

if ! installed; then
    "$python" - <<'PY' || { echo "holmes-venv: holmesgpt needs Python 3.10-3.13 (set PYTHON)" >&2; exit 1; }
import sys

sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 13)))
PY
    echo "holmes-venv: installing holmesgpt==$version into $venv (about a minute)" >&2
    start=$SECONDS
    "$python" -m venv "$venv"
    "$interpreter" -m pip install --quiet --disable-pip-version-check "holmesgpt==$version" >&2
    installed || { echo "holmes-venv: holmesgpt==$version did not install" >&2; exit 1; }
    echo "holmes-venv: done in $((SECONDS - start))s" >&2
fi

echo "$interpreter"
