#!/usr/bin/env bash
# Checks the dependency tree with cargo-deny (deny.toml): licenses, duplicate versions and
# wildcard requirements, and that every crate comes from crates.io. Installs cargo-deny from
# crates.io when it is missing (a few minutes on 2 cores, once). Advisories are left out: their
# database is on GitHub, out of reach here (deny.toml says more).
# Usage: scripts/deny.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v cargo-deny >/dev/null || cargo install cargo-deny --locked
cargo deny --workspace check licenses bans sources
