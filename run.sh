#!/usr/bin/env bash
# Installs what is missing, builds, and starts clm-server on its embedded SQLite store (./var).
# Extra arguments go to clm-server, e.g. ./run.sh --config=deploy/clm.textproto --log_level=debug
# (listening beyond 127.0.0.1 needs --tls_cert/--tls_key and --auth_tokens: see the README's Security section)
set -euo pipefail
cd "$(dirname "$0")"
source scripts/deps.sh
clm_install_deps

BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" --target clm-server clmctl
exec "$BUILD_DIR/server/clm-server" --data_dir=./var "$@"
