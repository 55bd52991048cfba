#!/usr/bin/env bash
# Runs the sync core's tests (crates/ddcp-sync: every decoder, the seals, the pages) under
# AddressSanitizer, with the nightly toolchain scripts/fuzz.sh installs. A long check, run by
# hand (a few minutes, a build of its own under target/asan); scripts/test.sh does not run it.
# Miri would check more, but its component is not on this machine's nightly.
# Usage: scripts/asan.sh [TEST FILTER]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
export RUSTFLAGS="-Zsanitizer=address" RUSTDOCFLAGS="-Zsanitizer=address"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}/asan
# The target named, so that the sanitizer reaches the tests and not the build scripts.
cargo +nightly test -p ddcp-sync --lib --target "$(rustc -vV | sed -n 's/^host: //p')" -- "$@"
