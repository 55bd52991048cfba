#!/usr/bin/env bash
# Runs a command inside a private network of its own: a fresh network namespace (with a mount
# namespace for its /etc/hosts) holding NODES global-looking addresses, vtnode1..vtnodeN
# (11.0.0.i/32 and 2a0b:11::i/64). Veilid carries its DHT only over such addresses, never over
# loopback or private ranges. The namespace has no link to the host: nothing inside can reach
# the outside, nothing outside can reach in, and it vanishes when the command exits.
#
#   scripts/netns.sh [--nodes N] COMMAND [ARGS...]
#
# Needs root, or unprivileged user namespaces (then it maps the caller to root inside).
set -euo pipefail

nodes=8
if [[ "${1:-}" == "--nodes" ]]; then
    nodes=$2
    shift 2
fi
if [[ $# -eq 0 ]]; then
    echo "usage: $0 [--nodes N] COMMAND [ARGS...]" >&2
    exit 2
fi
for tool in unshare ip mount; do
    command -v "$tool" >/dev/null || { echo "error: $tool is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
done

files=$(mktemp -d)
trap 'rm -rf "$files"' EXIT
{
    echo "127.0.0.1 localhost"
    for i in $(seq 1 "$nodes"); do
        echo "11.0.0.$i vtnode$i"
        echo "2a0b:11::$i vtnode$i"
    done
} > "$files/hosts"
echo "nameserver 127.0.0.1" > "$files/resolv.conf"

as_user=()
if [[ $(id -u) -ne 0 ]]; then
    as_user=(--user --map-root-user)
fi

# The setup runs inside the new namespaces, then replaces itself with the command.
setup='
set -e
ip link set lo up
ip link add vt0 type veth peer name vt0p
ip link set vt0 up
ip link set vt0p up
for i in $(seq 1 "$NETNS_NODES"); do
    # /32: each address primary (Veilid takes secondary IPv4 addresses for temporary ones)
    ip addr add "11.0.0.$i/32" dev vt0
    ip -6 addr add "2a0b:11::$i/64" dev vt0 nodad
done
# Veilid counts IPv4 as global only with a default gateway; this one need not exist.
ip route add default via 11.0.0.254 dev vt0 onlink
ip -6 route add default via 2a0b:11::fe dev vt0 onlink
mount --bind "$NETNS_FILES/hosts" /etc/hosts
mount --bind "$NETNS_FILES/resolv.conf" /etc/resolv.conf
exec "$@"
'
NETNS_NODES=$nodes NETNS_FILES=$files \
    unshare "${as_user[@]}" --net --mount --propagation private bash -c "$setup" netns "$@"
