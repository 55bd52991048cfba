#!/usr/bin/env bash
# Fuzzes what peers and local clients hand ddcp (fuzz/fuzz_targets/): `decode`, every decoder a
# peer or a file reaches (the wire, sealed statuses, notes and files, bundles, the puller),
# `control`, the control socket's frames as both ends read them, and `api_json`, the HTTP
# API's request bodies. With cargo fuzz and libFuzzer.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (default 30, split between every target: the
# smoke scripts/test.sh runs). A longer hunt: scripts/fuzz.sh 3600 decode.
# Crashes land in fuzz/artifacts/TARGET/; the corpus grows in fuzz/corpus/TARGET/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_TO_RUN=${1:-30}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(decode control api_json)

# cargo fuzz needs a nightly toolchain (for the sanitizer flags) and the cargo-fuzz tool.
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}/fuzz
EACH=$(( SECONDS_TO_RUN / ${#TARGETS[@]} ))
[ "$EACH" -gt 0 ] || EACH=1
for target in "${TARGETS[@]}"; do
  mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
  echo "fuzzing $target for $EACH s"
  cargo +nightly fuzz run --target-dir "$TARGET_DIR" "$target" -- \
    -max_total_time="$EACH" -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
    "fuzz/corpus/$target"
done
