#!/usr/bin/env bash
# Runs every test of the workspace, installing what the tests need first.
#
#   scripts/test.sh            # formatting, lints, then every test
#
# Build outputs go to $CARGO_TARGET_DIR (default ~/.cache/tidemark/target) so repeated runs and
# fresh clones share one warm cache; tools the tests need are installed under
# $TIDEMARK_TOOLS (default ~/.cache/tidemark/tools).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tidemark/target}"
export TIDEMARK_TOOLS="${TIDEMARK_TOOLS:-$HOME/.cache/tidemark/tools}"
mkdir -p "$CARGO_TARGET_DIR" "$TIDEMARK_TOOLS"

command -v cargo >/dev/null || { echo "test.sh: cargo not found: install Rust with rustup (https://rustup.rs)" >&2; exit 2; }

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked
