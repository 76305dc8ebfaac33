#!/usr/bin/env bash
# Installs what is missing, builds everything, and runs every test.
#   ./test.sh            the normal build (build/)
#   ./test.sh --asan     AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   ./test.sh --tsan     ThreadSanitizer (build-tsan/)
# Extra arguments after the mode go to ctest, e.g. ./test.sh -R ingest
set -euo pipefail
cd "$(dirname "$0")"
source scripts/deps.sh
clm_install_deps

BUILD_DIR=build
SANITIZE=""
case "${1:-}" in
  --asan) BUILD_DIR=build-asan; SANITIZE="address,undefined"; shift ;;
  --tsan) BUILD_DIR=build-tsan; SANITIZE="thread"; shift ;;
esac

cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLM_SANITIZE="$SANITIZE" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 300 -j "$(nproc)" "$@"
