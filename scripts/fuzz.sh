#!/usr/bin/env bash
# Arbitrary-input tests on the stable toolchain: runs CASES generated inputs (default
# 1,000,000) through each parser that takes what clients send (requests to every operation
# of the dispatcher's table, expressions, numbers, shard iterators), from SEED (default random,
# printed). An input that panics is saved under tests/fuzz/<target>/ (commit it: the e2e test
# fuzz_regressions replays every saved input) and the script exits 1.
#
#   scripts/fuzz.sh                    # every target, 1,000,000 cases each
#   scripts/fuzz.sh expression 5000000 # one target, more cases
#   scripts/fuzz.sh all 1000000 42     # a given seed, to reproduce a run
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tidemark/target}"
cargo build --release --locked -p tidemark-tests --bin fuzz
exec "$CARGO_TARGET_DIR/release/fuzz" "${1:-all}" "${2:-1000000}" ${3:+"$3"}
