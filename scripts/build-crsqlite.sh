#!/usr/bin/env bash
# Builds cr-sqlite 0.16.3 from the npm registry's source package, with patches/ applied (the
# three fixes for stable Rust, then crsql_commit_alter's fast path for added columns), into
#   $CRSQLITE_DIR/libcrsqlite_static.a   linked into the ddcp binary by build.rs
#   $CRSQLITE_DIR/crsqlite.so            a loadable build, for `--ext-file` and its tests
# CRSQLITE_DIR defaults to .cache/crsqlite-0.16.3 in the repository. Idempotent: when both files
# exist and were built from the current patch, it returns at once.
#
# Why so many steps: the crate pins a 2023 nightly that cannot be fetched here, so it is built
# with stable Rust (RUSTC_BOOTSTRAP=1) after three source fixes (patches/), and the static archive
# must be pre-linked with only `sqlite3_crsqlite_init` left global, or its private Rust runtime
# collides with ddcp's std at link time.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=0.16.3
PATCHES=("$ROOT/patches/crsqlite-$VERSION-stable.patch" "$ROOT/patches/crsqlite-$VERSION-fast-add-column.patch")
OUT=${CRSQLITE_DIR:-$ROOT/.cache/crsqlite-$VERSION}
STAMP=$OUT/.built-from

want_stamp() { echo "crsqlite $VERSION $(cat "${PATCHES[@]}" | sha256sum | cut -d' ' -f1) $(rustc --version)"; }

if [ -f "$OUT/libcrsqlite_static.a" ] && [ -f "$OUT/crsqlite.so" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$(want_stamp)" ]; then
  echo "cr-sqlite $VERSION already built in $OUT"
  exit 0
fi

"$ROOT/scripts/install-deps.sh"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "building cr-sqlite $VERSION in $WORK (about a minute on 2 cores)"
log() { echo "  $*"; }
run() { # run <label> <cmd...>: quiet unless it fails
  local label=$1; shift
  if ! "$@" >"$WORK/$label.log" 2>&1; then
    echo "cr-sqlite build failed at step '$label':" >&2
    tail -30 "$WORK/$label.log" >&2
    exit 1
  fi
}

cd "$WORK"
log "fetching source: npm pack @vlcn.io/crsqlite@$VERSION"
run npm-pack npm pack "@vlcn.io/crsqlite@$VERSION"
tar xzf "vlcn.io-crsqlite-$VERSION.tgz"
cd package
for patch in "${PATCHES[@]}"; do
  run "patch-$(basename "$patch" .patch)" patch -p1 -i "$patch"
done

export RUSTUP_TOOLCHAIN=stable # overrides the crate's rust-toolchain.toml (an old nightly)
export RUSTC_BOOTSTRAP=1       # the crate uses #![feature(...)]
export CRSQLITE_COMMIT_SHA=""  # read by env!() in rs/core/src/sha.rs
# A CARGO_TARGET_DIR from the caller would mix cr-sqlite's no_std builds with ddcp's.
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR

log "make loadable"
run make-loadable make loadable

log "static archive"
build_static() ( # a subshell: keeps our cwd
  (cd rs/bundle_static && cargo rustc --release --features static,omit_load_extension)
  mkdir -p static && cd static
  gcc -O2 -fPIC -std=c99 -DSQLITE_CORE -I../src -I../src/sqlite \
    -c ../src/crsqlite.c ../src/changes-vtab.c ../src/ext-data.c
  ld -r -o crsqlite_all.o --whole-archive ../rs/bundle_static/target/release/libcrsql_bundle_static.a \
    --no-whole-archive crsqlite.o changes-vtab.o ext-data.o
  objcopy --remove-section=.llvmbc --remove-section=.llvmcmd --remove-section=.llvm_addrsig \
    --redefine-sym DW.ref.rust_eh_personality=DW.ref.crsql_rust_eh_personality \
    --redefine-sym rust_eh_personality=crsql_rust_eh_personality \
    --keep-global-symbol=sqlite3_crsqlite_init crsqlite_all.o crsqlite_prelinked.o
  ar rcs libcrsqlite_static.a crsqlite_prelinked.o
)
run static build_static

globals=$(nm -g --defined-only static/crsqlite_prelinked.o | awk '{print $3}')
if [ "$globals" != "sqlite3_crsqlite_init" ]; then
  echo "cr-sqlite static archive exports more than sqlite3_crsqlite_init: $globals" >&2
  exit 1
fi

mkdir -p "$OUT"
cp static/libcrsqlite_static.a dist/crsqlite.so "$OUT/"
want_stamp >"$STAMP"
echo "cr-sqlite $VERSION built: $OUT"
