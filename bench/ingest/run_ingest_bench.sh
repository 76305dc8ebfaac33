#!/usr/bin/env bash
# Ingest throughput against the SQLite storage ceiling. Builds nothing: build clm-server, clm-load and
# clm-sqlite-ceiling first (see README.md).
#
# Usage: bench/ingest/run_ingest_bench.sh [BUILD_DIR]      (default ./build)
# Environment: TRADES (200000), BATCH (1000), STREAMS ("1 4"), INFLIGHT (4), GROUP (20000),
#   CLOSED_AT_ORDER (random | ascending), TMPDIR.
#
# Every load run gets a fresh clm-server on a fresh temporary data directory (empty database, as the ceiling's),
# listening on 127.0.0.1 with kernel-chosen ports. Prints clm-load's and the ceiling's results, the server's
# commit metrics and per-thread CPU for each run, then the ratios.
set -euo pipefail

BUILD_DIR=${1:-./build}
TRADES=${TRADES:-200000}
BATCH=${BATCH:-1000}
STREAMS=${STREAMS:-"1 4"}
INFLIGHT=${INFLIGHT:-16}
GROUP=${GROUP:-20000}
CLOSED_AT_ORDER=${CLOSED_AT_ORDER:-random}

SERVER_BIN=$BUILD_DIR/server/clm-server
LOAD_BIN=$BUILD_DIR/bench/ingest/clm-load
CEILING_BIN=$BUILD_DIR/bench/ingest/clm-sqlite-ceiling
for bin in "$SERVER_BIN" "$LOAD_BIN" "$CEILING_BIN"; do
  if [[ ! -x $bin ]]; then
    echo "run_ingest_bench: $bin is missing; build it first:" >&2
    echo "  cmake --build $BUILD_DIR --target clm-server clm-load clm-sqlite-ceiling" >&2
    exit 2
  fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/clm-ingest-bench.XXXXXX")
SERVER_PID=""
stop_server() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "run_ingest_bench: clm-server did not stop within 10 s of SIGTERM; killing it" >&2
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() {
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts clm-server on a fresh data directory; sets SERVER_PID, GRPC_PORT, METRICS_PORT.
start_server() {
  local dir=$1
  mkdir -p "$dir"
  "$SERVER_BIN" --grpc_address 127.0.0.1:0 --metrics_address 127.0.0.1:0 --data_dir "$dir/data" \
    >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  local line=""
  for _ in $(seq 100); do
    line=$(grep -m1 'serving gRPC on port' "$dir/server.log" || true)
    [[ -n $line ]] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "run_ingest_bench: clm-server exited during startup:" >&2
      cat "$dir/server.log" >&2
      SERVER_PID=""
      exit 1
    fi
    sleep 0.1
  done
  if [[ -z $line ]]; then
    echo "run_ingest_bench: clm-server did not come up within 10 s:" >&2
    cat "$dir/server.log" >&2
    exit 1
  fi
  GRPC_PORT=$(sed -E 's/.*serving gRPC on port ([0-9]+).*/\1/' <<<"$line")
  METRICS_PORT=$(sed -E 's/.*metrics port ([0-9]+).*/\1/' <<<"$line")
}

# "tid comm cpu_ns run_delay_ns" for every thread of a process, from /proc/PID/task/TID/schedstat: time on a
# CPU and time runnable but waiting for one. Wall time minus both is time blocked (I/O, locks, idle).
thread_cpu() {
  local pid=$1 task
  for task in /proc/"$pid"/task/*; do
    { echo "${task##*/} $(cat "$task/comm") $(cut -d' ' -f1-2 "$task/schedstat")"; } 2>/dev/null || true
  done
}

# Per-thread CPU and run-queue delay between two thread_cpu snapshots, busiest first, and the process total.
cpu_report() {
  local before=$1 after=$2 seconds=$3
  awk -v secs="$seconds" '
    NR == FNR { cpu[$1] = $3; delay[$1] = $4; next }
    {
      c = ($3 - cpu[$1]) / 1e9; d = ($4 - delay[$1]) / 1e9; total += c; total_delay += d
      if (c > 0.005) printf "%.2f %s %s %.2f %.2f\n", c, $2, $1, d, secs - c - d
    }
    END { printf "TOTAL %.2f %.2f %.2f\n", total, total_delay, (secs > 0 ? total / secs : 0) }
  ' "$before" "$after" | sort -k1,1 -g -r | awk '
    $1 == "TOTAL" { printf "server_cpu_seconds=%s\nserver_run_queue_wait_seconds=%s\nserver_cpu_cores_busy=%s\n", $2, $3, $4; next }
    { printf "server_thread %s(tid %s): cpu_seconds=%s run_queue_wait_seconds=%s blocked_or_idle_seconds=%s\n", $2, $3, $1, $4, $5 }'
}

# "write_bytes syscw" of a process (bytes it caused to be written to storage, write system calls).
process_io() {
  awk '$1 == "write_bytes:" { w = $2 } $1 == "syscw:" { s = $2 } END { print w, s }' /proc/"$1"/io
}

metric() {  # metric NAME FILE: the value of an unlabelled sample
  awk -v name="$1" '$1 == name { print $2 }' "$2"
}

declare -A TPS WRITER_RUNQ SECONDS_OF
echo "== setup: trades=$TRADES batch=$BATCH inflight=$INFLIGHT group=$GROUP closed_at_order=$CLOSED_AT_ORDER cores=$(nproc) load=$(cut -d' ' -f1-3 /proc/loadavg)"
for k in $STREAMS; do
  dir=$WORK/streams-$k
  start_server "$dir"
  echo "== clm-load --streams $k (clm-server pid $SERVER_PID, grpc port $GRPC_PORT, metrics port $METRICS_PORT)"
  thread_cpu "$SERVER_PID" >"$dir/cpu.before"
  io_before=$(process_io "$SERVER_PID")
  TIMEFORMAT='load_process_cpu_user_seconds=%U load_process_cpu_sys_seconds=%S'
  if ! { time "$LOAD_BIN" --server "127.0.0.1:$GRPC_PORT" --trades "$TRADES" --batch "$BATCH" --streams "$k" \
           --inflight "$INFLIGHT" --closed_at_order "$CLOSED_AT_ORDER" >"$dir/load.out"; } 2>"$dir/load.err"; then
    cat "$dir/load.out" "$dir/load.err" >&2
    echo "run_ingest_bench: clm-load failed with --streams $k; server log:" >&2
    tail -20 "$dir/server.log" >&2
    exit 1
  fi
  thread_cpu "$SERVER_PID" >"$dir/cpu.after"
  io_after=$(process_io "$SERVER_PID")
  curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" >"$dir/metrics.txt"
  stop_server
  cat "$dir/load.out"
  grep -v '^clm-load' "$dir/load.err" || true
  seconds=$(awk -F= '$1 == "seconds" { print $2 }' "$dir/load.out")
  TPS[$k]=$(awk -F= '$1 == "trades_per_second" { print $2 }' "$dir/load.out")
  commits=$(metric clm_store_commit_duration_seconds_count "$dir/metrics.txt")
  commit_sum=$(metric clm_store_commit_duration_seconds_sum "$dir/metrics.txt")
  batches=$(metric clm_store_commit_batches_sum "$dir/metrics.txt")
  awk -v c="$commits" -v s="$commit_sum" -v b="$batches" -v secs="$seconds" 'BEGIN {
    printf "server_commits=%d\nserver_batches_per_commit=%.2f\nserver_commit_ms_mean=%.2f\n", c, b / c, 1000 * s / c
    printf "server_writer_busy_fraction=%.2f\n", s / secs
  }'
  cpu_report "$dir/cpu.before" "$dir/cpu.after" "$seconds" | tee "$dir/cpu.txt"
  # The busiest thread named clm-server is the ingest writer (the main thread only waits for a signal).
  WRITER_RUNQ[$k]=$(awk -F'run_queue_wait_seconds=' '/^server_thread clm-server/ { split($2, a, " "); print a[1]; exit }' \
    "$dir/cpu.txt")
  SECONDS_OF[$k]=$seconds
  awk -v b="$io_before" -v a="$io_after" -v n="$TRADES" 'BEGIN {
    split(b, x, " "); split(a, y, " ")
    printf "server_write_mib=%.1f\nserver_write_bytes_per_trade=%.0f\nserver_write_syscalls=%d\n",
           (y[1] - x[1]) / 1048576, (y[1] - x[1]) / n, y[2] - x[2]
  }'
  sqlite_bytes=$(du -cb "$dir"/data/clm.db* | tail -1 | cut -f1)
  echo "server_db_mib_after=$(awk -v b="$sqlite_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')"
done

echo "== clm-sqlite-ceiling --group $GROUP"
"$CEILING_BIN" --db "$WORK/ceiling.db" --trades "$TRADES" --batch "$BATCH" --group "$GROUP" \
  --closed_at_order "$CLOSED_AT_ORDER" | tee "$WORK/ceiling.out"
CEILING=$(awk -F= '$1 == "trades_per_second" { print $2 }' "$WORK/ceiling.out")
CEILING_SECONDS=$(awk -F= '$1 == "seconds" { print $2 }' "$WORK/ceiling.out")
CEILING_RUNQ=$(awk -F= '$1 == "run_queue_wait_seconds" { print $2 }' "$WORK/ceiling.out")

echo "== summary"
echo "ceiling_trades_per_second=$CEILING"
best_k="" best=0
for k in $STREAMS; do
  echo "trades_per_second_streams_$k=${TPS[$k]}"
  awk -v t="${TPS[$k]}" -v c="$CEILING" -v k="$k" 'BEGIN { printf "ingest_to_ceiling_ratio_streams_%s=%.2f\n", k, t / c }'
  # On a shared machine both sides lose time waiting for a CPU. Taking the waits of the writer thread (the
  # bottleneck) and of the ceiling out gives an estimate of the ratio on an otherwise idle machine.
  awk -v ws="${SECONDS_OF[$k]}" -v wq="${WRITER_RUNQ[$k]:-0}" -v cs="$CEILING_SECONDS" -v cq="${CEILING_RUNQ:-0}" \
    -v k="$k" 'BEGIN { printf "ingest_to_ceiling_ratio_streams_%s_without_cpu_waits=%.2f\n", k, (cs - cq) / (ws - wq) }'
  if awk -v t="${TPS[$k]}" -v b="$best" 'BEGIN { exit !(t > b) }'; then best=${TPS[$k]}; best_k=$k; fi
done
# The headline: the best stream count, as an engine (or several) would be configured for throughput.
awk -v t="$best" -v c="$CEILING" -v k="$best_k" 'BEGIN {
  r = t / c
  printf "ingest_to_ceiling_ratio=%.2f\ningest_to_ceiling_ratio_streams=%s\ntarget_ratio=0.70\ntarget_met=%s\n", r, k,
         (r >= 0.70 ? "yes" : "no")
}'
