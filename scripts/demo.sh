#!/usr/bin/env bash
# The README story, for real, on one machine: installs what is missing, builds ddcp, starts a
# private Veilid network (scripts/netns.sh: a network namespace of its own, no link to the
# outside), and shows two databases, alice and bob, replicating live with `ddcp serve`: bob
# receives alice's rows, then each one's edits reach the other, with the time each took.
# Usage: scripts/demo.sh [WORKDIR]   (default: a fresh temporary folder, removed afterwards)
# Needs root or unprivileged user namespaces (for the private network).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [[ "${1:-}" != "--inside" ]]; then
  command -v cargo >/dev/null || { echo "error: cargo is missing: install Rust (https://rustup.rs)" >&2; exit 1; }
  scripts/install-deps.sh
  scripts/build-crsqlite.sh
  # DDCP: a ddcp binary already built (scripts/test.sh passes the one its tests used).
  if [ -z "${DDCP:-}" ]; then
    echo "building ddcp (debug)..."
    cargo build --quiet
    export DDCP=${CARGO_TARGET_DIR:-$ROOT/target}/debug/ddcp
  fi
  if [ $# -ge 1 ]; then
    WORK=$1; mkdir -p "$WORK"
  else
    WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
  fi
  echo "starting a private network (a namespace of its own, addresses vtnode1..vtnode8)"
  # Not exec: the trap above removes the work folder afterwards.
  scripts/netns.sh --nodes 8 "$0" --inside "$(cd "$WORK" && pwd)"
  exit
fi

# ---- inside the private network ----
WORK=$2
mkdir -p "$WORK/alice" "$WORK/bob"
export RUST_LOG=${RUST_LOG:-error,ddcp=info}
export VEILID_NETWORK_KEY=ddcp-demo
pids=()
cleanup() {
  # Stop what this demo started; each gets a bounded time to flush, then is killed.
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

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
# wait_for WHO SQL EXPECTED: polls WHO's database until SQL prints EXPECTED (at most 120 s);
# prints how long it took since $since.
wait_for() {
  local who=$1 sql=$2 expected=$3 got=""
  for _ in $(seq 1200); do
    got=$(cd "$WORK/$who" && "$DDCP" shell -c "$sql" 2>/dev/null || true)
    if [[ "$got" == "$expected" ]]; then
      echo "  -> visible on $who after $(( $(ms) - since )) ms"
      return 0
    fi
    sleep 0.1
  done
  echo "error: $who still shows '$got', not '$expected', after 120 s" >&2
  exit 1
}
# serve WHO HOST: `ddcp serve` for WHO in the background, its log lines prefixed with its name.
serve() {
  local who=$1 host=$2
  echo "$who\$ ddcp serve   (listening on $host)" >&2
  (cd "$WORK/$who" && exec env VEILID_LISTEN="$host:5150" "$DDCP" serve \
      2> >(sed -u "s/^/    [$who serve] /" >&2)) &
  pids+=($!)
}

say "the private network's plain nodes (vtnode1..vtnode4)"
"$DDCP" testnet --record-file "$WORK/bootstrap" >/dev/null 2>"$WORK/testnet.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$WORK/bootstrap" ] && break; sleep 0.1; done
[ -s "$WORK/bootstrap" ] || { echo "error: the test network did not start:" >&2; cat "$WORK/testnet.log" >&2; exit 1; }
export VEILID_BOOTSTRAP=$(cat "$WORK/bootstrap")
echo "bootstrap: $VEILID_BOOTSTRAP"

say "alice creates a database, loads the fixtures and serves"
alice_key=$(run alice init)
run alice shell < fixtures/cr_tables.sql >/dev/null
run alice shell < fixtures/ins_test_schema_alice.sql
serve alice vtnode5

say "bob clones alice: her tables and rows in one command, and a key of his own"
since=$(ms)
bob_key=$(VEILID_LISTEN=vtnode6:5150 run bob clone "$alice_key")
echo "  -> bob has alice's rows after $(( $(ms) - since )) ms"
run bob shell --mode box -c "select b.title, group_concat(t.tag, ', ') as tags from bookmarks b left join tags t on t.bookmark_id = b.id group by b.id order by b.title"

say "alice adds bob (her running serve takes it at once); bob serves"
run alice remote add bob "$bob_key"
serve bob vtnode6

say "bob edits; alice sees it"
since=$(ms)
run bob shell -c "update bookmarks set title = 'Veilid (bob''s note)' where url = 'https://veilid.com/'; insert into tags values ('01HF7Z3K8Q1B2C3D4E5F6G7H8K', 'networking');"
wait_for alice "select count(*) from tags where tag = 'networking'" 1

say "alice edits; bob sees it"
since=$(ms)
run alice shell -c "insert into bookmarks (id, url, title) values ('01HF7Z3K8Q1B2C3D4E5F6G7H8N', 'https://sqlite.org/', 'SQLite');"
wait_for bob "select title from bookmarks where id = '01HF7Z3K8Q1B2C3D4E5F6G7H8N'" SQLite

say "both databases now hold the same rows"
query="select title, url from bookmarks order by id; select bookmark_id, tag from tags order by 1, 2;"
run alice shell -c "$query" | tee "$WORK/alice.rows"
(cd "$WORK/bob" && "$DDCP" shell -c "$query") >"$WORK/bob.rows"
if cmp -s "$WORK/alice.rows" "$WORK/bob.rows"; then
  echo "alice and bob converged: $(wc -l <"$WORK/alice.rows") identical rows"
else
  echo "alice and bob differ:"; diff "$WORK/alice.rows" "$WORK/bob.rows"; exit 1
fi
say "stopping"
