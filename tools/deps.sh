#!/bin/sh
# Install the Debian packages Cairn needs to build and test; do nothing when all are present.
# Usage: tools/deps.sh
set -eu
# The third line is for installing and packaging: cpack's dependency scan (file), the man
# pages (groff-base, man-db), systemd-analyze (systemd; no running systemd needed), and what
# the root package test uses (adduser, logrotate, iproute2 for a private loopback).
# nettle-dev (and its libgmp-dev): X25519 and P-256 in TLS handshakes (broker/net/tls_kex.c);
# libssl-dev: the OpenSSL clients of bench_tls_load.
PKGS="build-essential cmake pkg-config libleveldb-dev libmbedtls-dev nettle-dev libpaho-mqtt-dev
      libcmocka-dev mosquitto-clients mosquitto openssl libssl-dev clang-format
      chromium python3-prometheus-client file groff-base man-db systemd adduser logrotate
      iproute2"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
# Node.js for the MQTT.js test (any 18+ that brings npm; Debian's nodejs and npm otherwise)
if ! command -v npm >/dev/null 2>&1; then
    missing="$missing nodejs npm"
fi
js_deps() { # the test-only JavaScript of tests/js, exactly as package-lock.json pins it
    dir="$(dirname "$0")/../tests/js"
    if [ ! -d "$dir/node_modules/mqtt" ]; then
        echo "deps: npm ci in tests/js"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
}
if [ -z "$missing" ]; then
    js_deps
    exit 0
fi
echo "deps: installing$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# Debian starts a system mosquitto on 1883 when it installs it; Cairn's benchmarks start their
# own on a free port, so the system one is not needed.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
    $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi
js_deps
echo "deps: done"
