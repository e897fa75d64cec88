#!/usr/bin/env bash
# Kafka publishing benchmark for docs/benchmarks.md: a fresh tansu 0.6.0 (sqlite), a release
# node publishing to it, and `stream-bench ENDPOINT kafka` (latency at a write rate, publish
# throughput, PutItem cost of publishing). Everything runs on this machine.
#
#   scripts/kafka-bench.sh [RATE] [SECONDS] [WRITERS]     # defaults 10000 10 32
#   TIDEMARK_BIN=/path/to/tidemark scripts/kafka-bench.sh  # another build of the node (A/B)
#
# tansu 0.6.0's sqlite schema has no index on header(topition, offset_id), so every fetched
# message with headers scans the whole header table and consumers slow down quadratically as
# the topic grows. The script adds that index before the run (HEADER_INDEX=0 leaves it out).
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${1:-10000}; SECONDS_=${2:-10}; WRITERS=${3:-32}
TOOLS=${TIDEMARK_TOOLS:-$HOME/.cache/tidemark/tools}
TANSU=$TOOLS/tansu/bin/tansu
[[ -x $TANSU ]] || { echo "kafka-bench.sh: $TANSU missing: run scripts/test.sh once (it installs tansu)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "kafka-bench.sh: python3 (with sqlite3) is needed for the header index" >&2; exit 2; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tidemark/target}"
cargo build --release --locked -p tidemark-cli --bin tidemark -p tidemark-tests --bin stream-bench
BIN=$CARGO_TARGET_DIR/release

WORK=$(mktemp -d)
BROKER_PORT=${BROKER_PORT:-19092}; NODE_PORT=${NODE_PORT:-8011}
pids=()
cleanup() { { kill -9 "${pids[@]}"; wait "${pids[@]}"; } 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

(cd "$WORK" && exec "$TANSU" broker --listener-url "tcp://127.0.0.1:$BROKER_PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$BROKER_PORT" --storage-engine sqlite://tansu.db \
  >"$WORK/tansu.log" 2>&1) &
pids+=($!)
if [[ ${HEADER_INDEX:-1} == 1 ]]; then
  python3 - "$WORK/tansu.db" <<'PY'
import sqlite3, sys, time
for _ in range(100):
    try:
        db = sqlite3.connect(sys.argv[1], timeout=30)
        db.execute("create index if not exists header_record on header (topition, offset_id)")
        db.commit()
        break
    except sqlite3.Error:
        time.sleep(0.1)
else:
    sys.exit("kafka-bench.sh: cannot index tansu's header table")
PY
fi
TIDEMARK_LOG=${TIDEMARK_LOG:-warn} "${TIDEMARK_BIN:-$BIN/tidemark}" serve --data-dir "$WORK/node" --port "$NODE_PORT" \
  --kafka-brokers "127.0.0.1:$BROKER_PORT" >"$WORK/node.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$NODE_PORT/" >/dev/null && break; sleep 0.1; done
NODE_PID=${pids[1]} BROKER_PID=${pids[0]} \
  "$BIN/stream-bench" "http://127.0.0.1:$NODE_PORT" kafka "127.0.0.1:$BROKER_PORT" "$RATE" "$SECONDS_" "$WRITERS"
