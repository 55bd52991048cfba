#!/usr/bin/env bash
# Fuzzes ddcp's decoders (fuzz/fuzz_targets/decode.rs) with cargo fuzz and libFuzzer.
# Usage: scripts/fuzz.sh [SECONDS]   (default 30: the smoke run scripts/test.sh does)
# A longer hunt: scripts/fuzz.sh 3600. Crashes land in fuzz/artifacts/decode/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_TO_RUN=${1:-30}

# cargo fuzz needs a nightly toolchain (for the sanitizer flags) and the cargo-fuzz tool.
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}/fuzz
mkdir -p fuzz/corpus/decode
cargo +nightly fuzz run --target-dir "$TARGET_DIR" decode -- \
  -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
  fuzz/corpus/decode
