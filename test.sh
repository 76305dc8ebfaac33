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

# gcc 12's TSan runtime knows the address-space layouts of older kernels only: where a newer kernel
# randomises mmap more widely (vm.mmap_rnd_bits above 28), a TSan binary can die at start with "FATAL:
# ThreadSanitizer: unexpected memory mapping". The build (test discovery starts every test binary) and the
# tests therefore run without address-space randomisation, which child processes inherit; where setarch
# may not switch it off (a locked-down container), the randomisation is narrowed instead when we may.
RUN=()
if [[ "$SANITIZE" == thread ]]; then
  if setarch "$(uname -m)" -R true 2>/dev/null; then
    RUN=(setarch "$(uname -m)" -R)
  elif [[ "$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)" -gt 28 ]]; then
    echo "test.sh: setarch -R is not permitted; setting vm.mmap_rnd_bits=28 for TSan" >&2
    sysctl -q -w vm.mmap_rnd_bits=28 || echo "test.sh: could not; TSan may fail with 'unexpected memory mapping'" >&2
  fi
fi

cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLM_SANITIZE="$SANITIZE" >/dev/null
"${RUN[@]}" cmake --build "$BUILD_DIR" -j "$(nproc)"
"${RUN[@]}" ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 300 -j "$(nproc)" "$@"

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
