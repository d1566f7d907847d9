#!/usr/bin/env bash
# Install what the benchmark peers need that pip cannot: the redis-server
# binary that the RQ peer (bench/peers/rq_peer.py) launches on a private port.
#
# Idempotent: does nothing when redis-server is already on PATH. Redis is NOT
# started or enabled as a service: the peer starts its own throw-away server
# (no persistence, a free loopback port) and stops it when done.
#
# The Python side (rq, redis, ray) comes from the project's `bench` extra:
#   .venv/bin/pip install -e '.[bench]'
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
    echo "redis-server already installed: $(command -v redis-server)"
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "error: need root (or sudo) to apt-get install redis-server" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
# policy-rc.d 101 keeps Debian's postinst from starting the redis service
# (in containers without systemd invoke-rc.d would otherwise try).
POLICY=/usr/sbin/policy-rc.d
ADDED_POLICY=0
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod +x "$POLICY"
    ADDED_POLICY=1
fi
cleanup() { if [ "$ADDED_POLICY" -eq 1 ]; then "${SUDO[@]}" rm -f "$POLICY"; fi; }
trap cleanup EXIT
"${SUDO[@]}" apt-get install -y --no-install-recommends redis-server

echo "redis-server installed: $(command -v redis-server) ($(redis-server --version))"
