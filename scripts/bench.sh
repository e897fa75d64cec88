#!/usr/bin/env bash
# Benchmarks Tidemark (durability sync and buffer) against this machine's HTTP ceiling and the
# peers dynalite (memory and disk) and moto, in ONE run of ../shared/bench/peers.sh, so ratios
# within the run are comparable. Prints the report; results stay in $BENCH_OUT.
#
#   scripts/bench.sh                          # put, get, update at 16 and 64 connections
#   WORKLOADS="get" PEERS="" scripts/bench.sh # quick: tidemark and the ceiling only
#
# Needs wrk (apt-get install wrk), node/npm (dynalite) and python3 (moto); peers.sh installs
# the peers under $PEERS_DIR (default /tmp/peers) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SHARED=${SHARED:-$(cd .. && pwd)/shared}
[[ -x $SHARED/bench/peers.sh ]] || { echo "bench.sh: $SHARED/bench/peers.sh not found (set SHARED)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "bench.sh: wrk not found: apt-get update && apt-get install -y wrk" >&2; exit 2; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tidemark/target}"
cargo build --release --locked -p tidemark-cli --bin tidemark -p tidemark-tests --bin http-ceiling
BIN=$CARGO_TARGET_DIR/release

export SUBJECTS="tidemark-sync=$BIN/tidemark serve --port {PORT} --data-dir {DATA} --durability sync
tidemark-buffer=$BIN/tidemark serve --port {PORT} --data-dir {DATA} --durability buffer"
export CEILING_CMD="$BIN/http-ceiling {PORT}"
export WORKLOADS="${WORKLOADS:-put get update}"
export TIDEMARK_LOG="${TIDEMARK_LOG:-warn}"
exec "$SHARED/bench/peers.sh"
