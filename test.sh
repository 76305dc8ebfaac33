#!/usr/bin/env bash
# Installs what is missing, builds everything, and runs every test.
#   ./test.sh            the normal build (build/)
#   ./test.sh --asan     AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   ./test.sh --tsan     ThreadSanitizer (build-tsan/)
# Without a mode it also builds the libFuzzer targets with clang (build-fuzz/) and fuzzes each briefly.
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

if [ -z "$SANITIZE" ]; then
  launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  fi
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLM_FUZZ=ON \
    "${launcher[@]}" >/dev/null
  cmake --build build-fuzz -j "$(nproc)"
  ctest --test-dir build-fuzz --output-on-failure -j "$(nproc)" "$@"
fi
