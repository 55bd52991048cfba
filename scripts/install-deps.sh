#!/usr/bin/env bash
# Installs the Debian packages ddcp's build and tests need, when they are missing:
# clang + libclang-dev (bindgen, for cr-sqlite), capnproto (capnpc for schema/), make, binutils,
# iproute2 + util-linux (network namespaces for the Veilid tests), prometheus (promtool for the
# deploy kit's checks, and a real Prometheus in the metrics network test), chromium (the example
# app's browser test), curl (the API's plain-client tests).
set -euo pipefail
need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_cmd clang || need+=(clang)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev)
have_cmd capnp || need+=(capnproto)
have_cmd make || need+=(make)
have_cmd patch || need+=(patch)
have_cmd objcopy || need+=(binutils)
have_cmd ip || need+=(iproute2)
have_cmd unshare || need+=(util-linux)
have_cmd script || need+=(bsdutils)
have_cmd npm || need+=(npm)
have_cmd promtool || need+=(prometheus)
have_cmd chromium || need+=(chromium)
have_cmd curl || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  # --no-install-recommends: prometheus would bring node exporters and alertmanager.
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
