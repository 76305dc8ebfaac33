#!/usr/bin/env bash
# ctest's short fuzz run: `run_short.sh FUZZER CORPUS_DIR SECONDS`. Fuzzes a copy of the committed corpus
# in a temporary directory (new inputs never land in the tree); a crashing input is kept in the current
# directory (the build's fuzz/ folder) as crash-<sha1> and its path printed by libFuzzer.
set -euo pipefail
fuzzer=$1
corpus=$2
seconds=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/clm-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
cp "$corpus"/* "$work/corpus/"
"$fuzzer" -max_total_time="$seconds" -timeout=30 -print_final_stats=1 -artifact_prefix="$PWD/" "$work/corpus"
