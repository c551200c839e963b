#!/usr/bin/env bash
# Install the system packages the ccdeploy test suite needs.
#
#   softhsm2   - a software PKCS#11 token (libsofthsm2.so, softhsm2-util) for the pkcs11: KEK tests
#   opensc     - pkcs11-tool, handy for inspecting tokens
#   postgresql - the key broker's replica backend; tests/pg.py starts a private server from its
#                initdb/pg_ctl (under /usr/lib/postgresql/*/bin) as the `postgres` user it creates
#
# Idempotent: when every package is already installed it does nothing (no apt-get update).
# Installs only when run as root; otherwise it prints what to install and exits 0, and the tests
# that need a missing component skip with a message (or fail under CI=true).
set -euo pipefail

PACKAGES=(softhsm2 opensc postgresql)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg -s "$pkg" >/dev/null 2>&1; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: missing ${missing[*]}; this script only knows apt-get, install them by hand" >&2
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-deps: missing ${missing[*]}; install with: sudo apt-get install ${missing[*]}" >&2
    exit 0
fi

echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-system-deps: done"
