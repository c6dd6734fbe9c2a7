#!/usr/bin/env bash
# Installs what the integration tests need outside Python, when it is missing:
#   - Debian's prometheus and prometheus-alertmanager (real servers for the
#     health-check integration tests);
#   - a separate virtualenv with HolmesGPT 0.45 (proves HolmesGPT loads our output).
# Prints the HolmesGPT interpreter as the last line of stdout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v prometheus >/dev/null || ! command -v prometheus-alertmanager >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "test-deps: installing Debian packages prometheus prometheus-alertmanager" >&2
        apt-get update -qq >&2
        # The packages' services are not started: tests run the binaries themselves.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            prometheus prometheus-alertmanager >&2
    else
        echo "test-deps: install the Debian packages prometheus and prometheus-alertmanager" \
             "(sudo apt-get install prometheus prometheus-alertmanager)" >&2
        exit 1
    fi
fi

scripts/holmes-venv.sh
