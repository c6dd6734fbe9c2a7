#!/usr/bin/env bash
# Installs what the integration tests need outside Python, when it is missing:
#   - Debian's prometheus and prometheus-alertmanager (real servers for the
#     health-check integration tests);
#   - a kubectl (the API emulator's kubectl conformance suite): the one on PATH
#     or $KUBECTL; without either, Debian's kubernetes-client package when run
#     as root (old, but a real kubectl); otherwise the suite is skipped with
#     that reason (a failure under DYNTOOLSET_REQUIRE_KUBECTL=1, as in CI);
#   - Debian's chromium (headless: the status page's browser test);
#   - a separate virtualenv with HolmesGPT 0.45 (proves HolmesGPT loads our output).
# Prints the HolmesGPT interpreter as the last line of stdout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

can_apt() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null
}

apt_updated=
apt_install() {
    echo "test-deps: installing Debian packages $*" >&2
    if [ -z "$apt_updated" ]; then
        apt-get update -qq >&2
        apt_updated=1
    fi
    # The packages' services are not started: tests run the binaries themselves.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

if ! command -v prometheus >/dev/null || ! command -v prometheus-alertmanager >/dev/null; then
    if can_apt; then
        apt_install prometheus prometheus-alertmanager
    else
        echo "test-deps: install the Debian packages prometheus and prometheus-alertmanager" \
             "(sudo apt-get install prometheus prometheus-alertmanager)" >&2
        exit 1
    fi
fi

if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
    if can_apt; then
        apt_install chromium
    else
        echo "test-deps: install the Debian package chromium" \
             "(sudo apt-get install --no-install-recommends chromium)" >&2
        exit 1
    fi
fi

if [ -z "${KUBECTL:-}" ] && ! command -v kubectl >/dev/null; then
    if can_apt; then
        apt_install kubernetes-client
    else
        echo "test-deps: no kubectl: the kubectl conformance suite will be skipped" \
             "(sudo apt-get install kubernetes-client, or set KUBECTL)" >&2
    fi
fi

scripts/holmes-venv.sh
