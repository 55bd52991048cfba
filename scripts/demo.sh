#!/usr/bin/env bash
# The README story on one machine: installs what is missing, builds ddcp, then shows two
# databases, alice and bob, replicating with ddcp's local commands (bundles: replication by
# file). The networked version of this demo arrives with the Veilid layer.
# Usage: scripts/demo.sh [WORKDIR]   (default: a fresh temporary folder, removed afterwards)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

command -v cargo >/dev/null || { echo "error: cargo is missing: install Rust (https://rustup.rs)" >&2; exit 1; }
scripts/install-deps.sh
scripts/build-crsqlite.sh
echo "building ddcp (debug)..."
cargo build --quiet
DDCP=${CARGO_TARGET_DIR:-$ROOT/target}/debug/ddcp

if [ $# -ge 1 ]; then
  WORK=$1; mkdir -p "$WORK"
else
  WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK/alice" "$WORK/bob"
export RUST_LOG=${RUST_LOG:-error,ddcp=info}

say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
# quote ARG: ARG as a shell would need it typed, in single quotes when it has to be.
quote() {
  case $1 in
    *\'*) case $1 in *[\"\$\`\\]*) ;; *) printf '"%s"' "$1"; return ;; esac ;;&
    *[!A-Za-z0-9_./:=-]*) printf "'%s'" "${1//\'/\'\\\'\'}" ;;
    *) printf '%s' "$1" ;;
  esac
}
# run WHO ARGS...: a ddcp command in WHO's folder, echoed the way a user would type it.
run() {
  local who=$1; shift
  { printf '%s$ ddcp' "$who"; for arg in "$@"; do printf ' %s' "$(quote "$arg")"; done; echo; } >&2
  (cd "$WORK/$who" && "$DDCP" "$@")
}
ms() { date +%s%3N; }

say "alice creates a database and loads the fixtures"
run alice init
run alice shell < fixtures/cr_tables.sql >/dev/null
run alice shell < fixtures/ins_test_schema_alice.sql
run alice status

say "bob creates a database with the same schema"
run bob init
run bob shell < fixtures/cr_tables.sql >/dev/null

say "alice's changes travel to bob in a bundle"
t0=$(ms)
run alice bundle create ../alice.bundle
run bob bundle verify ../alice.bundle
run bob bundle apply ../alice.bundle
echo "(took $(( $(ms) - t0 )) ms)"
run bob shell --mode box -c "select b.title, group_concat(t.tag, ', ') as tags from bookmarks b left join tags t on t.bookmark_id = b.id group by b.id order by b.title"

say "bob edits, alice edits the same row concurrently; bundles go both ways"
since_bob=$(cd "$WORK/bob" && "$DDCP" status --json | sed -n 's/.*"db_version": \([0-9]*\).*/\1/p')
since_alice=$(cd "$WORK/alice" && "$DDCP" status --json | sed -n 's/.*"db_version": \([0-9]*\).*/\1/p')
run bob shell -c "update bookmarks set title = 'Veilid (bob''s note)' where url = 'https://veilid.com/'; insert into tags values ('01HF7Z3K8Q1B2C3D4E5F6G7H8K', 'networking');"
run alice shell -c "update bookmarks set url = 'https://veilid.com/docs/' where url = 'https://veilid.com/';"
run bob bundle create --since "$since_bob" ../bob.bundle
run alice bundle create --since "$since_alice" ../alice2.bundle
run alice bundle apply ../bob.bundle
run bob bundle apply ../alice2.bundle

say "both databases now hold the same rows"
query="select title, url from bookmarks order by id; select bookmark_id, tag from tags order by 1, 2;"
run alice shell -c "$query" | tee "$WORK/alice.rows"
(cd "$WORK/bob" && "$DDCP" shell -c "$query") >"$WORK/bob.rows"
if cmp -s "$WORK/alice.rows" "$WORK/bob.rows"; then
  echo "alice and bob converged: $(wc -l <"$WORK/alice.rows") identical rows"
else
  echo "alice and bob differ:"; diff "$WORK/alice.rows" "$WORK/bob.rows"; exit 1
fi
