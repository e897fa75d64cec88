#!/usr/bin/env bash
# Benchmarks Tidemark (durability sync and buffer) against this machine's HTTP ceiling and the
# peers ruststack (Rust, in memory), Dynoxide (Rust, SQLite in memory and on disk), dynalite
# (memory and disk) and moto, in ONE run of ../shared/bench/peers.sh, so ratios within the
# run are comparable. Prints the report (divided by ruststack); results stay in $BENCH_OUT.
#
#   scripts/bench.sh                           # get, put, update, query at 16 and 64 connections
#   WORKLOADS="get" PEERS=" " scripts/bench.sh # quick: tidemark and the ceiling only
#
# Needs wrk (apt-get install wrk), cargo (Dynoxide, ruststack), node/npm (dynalite) and python3
# (moto); peers.sh installs the peers under $PEERS_DIR (default /tmp/peers) when missing.
# ruststack is built from a source snapshot of github.com/tyrchen/ruststack: RUSTSTACK_SRC, or
# $PEERS_DIR/ruststack-src when it holds one.
#
# Latency: wrk corrects for coordinated omission (for every response slower than twice the
# mean interval it records the responses a steady client would have waited for meanwhile), so
# its p99 counts a server-wide pause once per request that would have queued behind it.
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
export WORKLOADS="${WORKLOADS:-get put update query}"
export PEERS="${PEERS:-ruststack dynoxide-mem dynoxide-disk dynalite-mem dynalite-disk moto}"
export BASELINE="${BASELINE:-ruststack}"
PEERS_DIR=${PEERS_DIR:-/tmp/peers}
if [[ " $PEERS " == *" ruststack "* && -z ${RUSTSTACK_SRC:-} ]]; then
  [[ -f $PEERS_DIR/ruststack-src/Cargo.toml ]] || {
    echo "bench.sh: the ruststack peer needs a source snapshot of github.com/tyrchen/ruststack:" \
      "set RUSTSTACK_SRC to it (or unpack it into $PEERS_DIR/ruststack-src), or leave ruststack" \
      "out of PEERS" >&2
    exit 2
  }
  export RUSTSTACK_SRC=$PEERS_DIR/ruststack-src
fi
export TIDEMARK_LOG="${TIDEMARK_LOG:-warn}"
exec "$SHARED/bench/peers.sh"
