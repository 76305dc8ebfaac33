#!/usr/bin/env bash
# Long fuzzing runs by hand (./test.sh only fuzzes each target for a few seconds).
#   scripts/fuzz.sh TARGET [SECONDS] [libFuzzer flags...]    e.g. scripts/fuzz.sh trade_ingest 3600
#   scripts/fuzz.sh list                                     the targets
# Builds build-fuzz/ (clang, -DCLM_FUZZ=ON) when needed, then fuzzes TARGET at low priority (nice 10) for
# SECONDS (default 600). New interesting inputs go to var/fuzz/TARGET/ (kept between runs, not committed);
# the committed seeds in fuzz/corpus/TARGET/ are read, never written. A crashing input is saved as
# var/fuzz/artifacts/TARGET-crash-<sha1>: reproduce it with `build-fuzz/fuzz/TARGET_fuzzer FILE`, fix the
# code at fault, and copy the file into fuzz/corpus/TARGET/ so every build replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
clm_install_deps

TARGETS=(trade_ingest server_config legacy_jsonl)
if [ $# -lt 1 ] || [ "$1" = list ]; then
  echo "targets: ${TARGETS[*]}"
  [ $# -ge 1 ] && exit 0
  echo "usage: scripts/fuzz.sh TARGET [SECONDS] [libFuzzer flags...]" >&2
  exit 2
fi
target=$1
seconds=${2:-600}
shift $(( $# >= 2 ? 2 : 1 ))
if [ ! -d "fuzz/corpus/$target" ]; then
  echo "unknown target '$target'; targets: ${TARGETS[*]}" >&2
  exit 2
fi

BUILD_DIR=${BUILD_DIR:-build-fuzz}
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLM_FUZZ=ON \
  "${launcher[@]}" >/dev/null
cmake --build "$BUILD_DIR" --target "${target}_fuzzer"

mkdir -p "var/fuzz/$target" var/fuzz/artifacts
# ASan keeps the allocation stack of every heap block in a depot that never shrinks; on the JSON target the
# distinct stacks alone take 1 GB in 5 minutes. Long runs go without them (twice the exec/s); replaying a
# crash file (`build-fuzz/fuzz/TARGET_fuzzer FILE`) has the full allocation stacks again.
export ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=0}
exec nice -n 10 "$BUILD_DIR/fuzz/${target}_fuzzer" -max_total_time="$seconds" -timeout=30 -print_final_stats=1 \
  -artifact_prefix="var/fuzz/artifacts/$target-" "$@" "var/fuzz/$target" "fuzz/corpus/$target"
