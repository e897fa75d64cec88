#!/usr/bin/env bash
# Scale benchmarks (docs/benchmarks.md, issue 15): for each table size, a fresh release node
# loaded with ~1 KB items through BatchWriteItem (`scale-bench load`), then the shared wrk
# workloads (../shared/bench/bench.sh, no preload of its own) over exactly those keys, RSS and
# disk after each phase; on the largest size a write soak (`scale-bench soak`) whose p99 per
# minute shows whether latency follows compaction; last, each keyspace's bytes on disk.
#
#   scripts/scale-bench.sh                             # 100k and 10M items, 600 s soak
#   SIZES="100000 1000000" SOAK=120 scripts/scale-bench.sh
#
# Environment: SIZES ["100000 10000000"], SOAK seconds [600], SOAK_WRITERS [16],
# DURABILITY [sync], WORKLOADS ["get query put update"], CONNS ["16 64"], LOADERS [16],
# BENCH_OUT [a new /tmp/tidemark-scale.XXXXXX]. Needs wrk (apt-get install wrk) and about
# 2.5 KB of free disk per item of the largest size.
set -euo pipefail
cd "$(dirname "$0")/.."

SHARED=${SHARED:-$(cd .. && pwd)/shared}
[[ -x $SHARED/bench/bench.sh ]] || { echo "scale-bench.sh: $SHARED/bench/bench.sh not found (set SHARED)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "scale-bench.sh: wrk not found: apt-get update && apt-get install -y wrk" >&2; exit 2; }

SIZES=${SIZES:-"100000 10000000"}
SOAK=${SOAK:-600}
SOAK_WRITERS=${SOAK_WRITERS:-16}
DURABILITY=${DURABILITY:-sync}
LOADERS=${LOADERS:-16}
export WORKLOADS=${WORKLOADS:-"get query put update"}
export CONNS=${CONNS:-"16 64"}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/tidemark-scale.XXXXXX)}
mkdir -p "$OUT/logs"
largest=$(tr ' ' '\n' <<<"$SIZES" | sort -n | tail -1)
free_kb=$(df -Pk "$OUT" | awk 'NR == 2 { print $4 }')
(( free_kb > largest * 5 / 2 )) || { echo "scale-bench.sh: $((largest * 5 / 2 / 1024)) MiB of free disk needed under $OUT, $((free_kb / 1024)) MiB free" >&2; exit 2; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tidemark/target}"
cargo build --release --locked -p tidemark-cli --bin tidemark -p tidemark-tests --bin scale-bench
BIN=$CARGO_TARGET_DIR/release
PORT=${PORT:-8131}
ENDPOINT=http://127.0.0.1:$PORT

say() { printf '[%s] scale: %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$OUT/report.txt"; }
node=""
cleanup() { [[ -n $node ]] && { kill -9 "$node"; wait "$node"; } 2>/dev/null || true; }
trap cleanup EXIT

cpu_ticks() { sed 's/^.*) //' "/proc/$node/stat" | awk '{ print $12 + $13 }'; }
# Waits until the node uses under 10% of a core over 2 s (flushes and compactions of the load
# done), at most 900 s; says how long that took.
settle() {
  local started=$SECONDS hz; hz=$(getconf CLK_TCK)
  while (( SECONDS - started < 900 )); do
    local before; before=$(cpu_ticks); sleep 2
    (( ($(cpu_ticks) - before) * 100 < hz * 2 * 10 )) && break
  done
  say "$1: idle after $((SECONDS - started)) s"
}
footprint() {
  say "$1: rss $(( $(ps -o rss= -p "$node") / 1024 )) MiB, data dir $(( $(du -sk "$data" | cut -f1) / 1024 )) MiB"
}

for size in $SIZES; do
  data=$OUT/data-$size
  TIDEMARK_LOG=${TIDEMARK_LOG:-warn} "$BIN/tidemark" serve --port "$PORT" --data-dir "$data" \
    --durability "$DURABILITY" >"$OUT/logs/node-$size.log" 2>&1 &
  node=$!
  for _ in $(seq 100); do curl -sf "$ENDPOINT/" >/dev/null && break; sleep 0.1; done
  say "$size items: node $node, $DURABILITY, data $data"
  "$BIN/scale-bench" load "$ENDPOINT" "$size" "$LOADERS" | tee -a "$OUT/report.txt"
  footprint "after the load"
  settle "after the load"
  footprint "settled"
  BENCH_CSV=$OUT/results.csv BENCH_FOOTPRINT_CSV=$OUT/footprint.csv BENCH_LOG_DIR=$OUT/logs \
    BENCH_PID=$node BENCH_DATA_DIR=$data SKIP_SETUP=1 TABLE=bench \
    PRELOAD_PARTITIONS=$((size / 10)) SK_PER_PK=10 PUT_PARTITIONS=$((size / 10)) \
    "$SHARED/bench/bench.sh" "$ENDPOINT" "tidemark-$size" >>"$OUT/logs/bench-$size.log" 2>&1
  footprint "after the workloads"
  # Every write leaves a change record: the load, the recorded put and update runs (their warmups
  # are not counted) and the soak.
  writes=$((size + $(awk -F, -v label="tidemark-$size" '$1 == label && $2 ~ /(put|update)$/ { n += $10 } END { print n + 0 }' "$OUT/results.csv")))
  if [[ $size == "$largest" && $SOAK != 0 ]]; then
    settle "before the soak"
    "$BIN/scale-bench" soak "$ENDPOINT" "$SOAK" "$SOAK_WRITERS" $((size / 10)) \
      | tee "$OUT/soak.txt" | tee -a "$OUT/report.txt"
    writes=$((writes + $(awk '/^soak [0-9]+ s,/ { sub(/^.*: /, ""); print int($1 * '"$SOAK"') }' "$OUT/soak.txt")))
    footprint "after the soak"
  fi
  kill -TERM "$node"; wait "$node" || true; node=""
  "$BIN/scale-bench" disk "$data" "$writes" | tee -a "$OUT/report.txt"
  [[ ${KEEP_DATA:-0} == 1 ]] || rm -rf "$data"
done
python3 "$SHARED/bench/report.py" "$OUT/results.csv" --footprint "$OUT/footprint.csv" \
  --baseline "tidemark-$largest" | tee -a "$OUT/report.txt"
say "results in $OUT"
