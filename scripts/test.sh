#!/usr/bin/env bash
# Runs every test of the workspace, installing what the tests need first.
#
#   scripts/test.sh            # formatting, lints, then every test
#
# Build outputs go to $CARGO_TARGET_DIR (default ~/.cache/tidemark/target) so repeated runs and
# fresh clones share one warm cache; tools the tests need are installed under
# $TIDEMARK_TOOLS (default ~/.cache/tidemark/tools): tansu, the Kafka-protocol broker of the
# publishing tests (skipped when KAFKA_BROKERS points at another Kafka). The status page test
# needs a browser: Debian's chromium, installed with apt-get when missing; the authentication
# tests need the AWS CLI, installed with pip when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tidemark/target}"
# Incremental compilation state grows without bound in a shared target folder (tens of GB
# over a few days of runs, until the disk fills and the linker dies); a test run does not
# need it.
export CARGO_INCREMENTAL=0
export TIDEMARK_TOOLS="${TIDEMARK_TOOLS:-$HOME/.cache/tidemark/tools}"
mkdir -p "$CARGO_TARGET_DIR" "$TIDEMARK_TOOLS"

command -v cargo >/dev/null || { echo "test.sh: cargo not found: install Rust with rustup (https://rustup.rs)" >&2; exit 2; }

# The Kafka tests run against a real broker: tansu 0.6.0 (sqlite storage), unless
# KAFKA_BROKERS names another cluster. Installed once (about 9 minutes on 2 cores).
TANSU="$TIDEMARK_TOOLS/tansu/bin/tansu"
if [[ -z "${KAFKA_BROKERS:-}" && ! -x "$TANSU" ]]; then
  echo "== installing tansu 0.6.0 into $TIDEMARK_TOOLS/tansu (once)"
  CARGO_TARGET_DIR="$TIDEMARK_TOOLS/tansu-build" \
    cargo install tansu --version 0.6.0 --features dynostore,libsql --locked \
      --root "$TIDEMARK_TOOLS/tansu"
  rm -rf "$TIDEMARK_TOOLS/tansu-build"
fi

# The status page is tested in headless Chromium (Debian's package).
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  echo "== installing chromium (apt-get, once)"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    || { echo "test.sh: cannot install chromium: apt-get install chromium" >&2; exit 2; }
fi

# The authentication tests run the AWS CLI against a node.
if ! command -v aws >/dev/null; then
  echo "== installing the AWS CLI (pip, once)"
  python3 -m pip install --quiet --user awscli \
    || { echo "test.sh: cannot install the AWS CLI: pip install awscli" >&2; exit 2; }
  export PATH="$HOME/.local/bin:$PATH"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked
