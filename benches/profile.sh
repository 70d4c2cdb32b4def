#!/usr/bin/env bash
# benches/profile.sh: where braidd's cycles go at saturation. Brings up the lab (tools/braid-lab,
# --nat, one queue and one worker per end, as benches/lab.sh), starts braidd at both ends, sends
# 64-byte UDP frames from the LAN host at --rate (default: as fast as the generator can) for a
# while, and samples both daemons with `perf record` (cpu-clock, call graphs) in the middle of it.
# Prints each end's hottest symbols (self time) and keeps the perf data in --out. Needs root and
# perf. See benches/RESULTS.md.
#
#   benches/profile.sh [--braidd PATH] [--rate R] [--size B] [--seconds N] [--prefix P] [--out DIR]
set -euo pipefail

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly LAB=$SELF_DIR/../tools/braid-lab
readonly LAN_HOST=198.18.1.2
readonly INET_HOST=203.0.113.130
# shellcheck source=benches/common.sh
. "$SELF_DIR/common.sh"

braidd=
rate=max
size=64
seconds=8
prefix=bprof
out=
die() {
    echo "profile.sh: $*" >&2
    exit 1
}
note() { echo "profile.sh: $*" >&2; }
while [ $# -gt 0 ]; do
    case "$1" in
    --braidd | --rate | --size | --seconds | --prefix | --out)
        [ $# -ge 2 ] || die "$1 needs a value"
        case "$1" in
        --braidd) braidd=$2 ;;
        --rate) rate=$2 ;;
        --size) size=$2 ;;
        --seconds) seconds=$2 ;;
        --prefix) prefix=$2 ;;
        --out) out=$2 ;;
        esac
        shift 2
        ;;
    -h | --help)
        sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument $1 (--help)" ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, AF_XDP)"
command -v perf >/dev/null || die "needs perf (linux-perf)"
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -ge 2 ] && [ "$seconds" -le 60 ] ||
    die "--seconds must be 2 to 60"
target=${CARGO_TARGET_DIR:-$SELF_DIR/../target}
braidd=${braidd:-$target/release/braidd}
pktgen=$(dirname "$braidd")/braid-pktgen
[ -x "$braidd" ] || die "no braidd at $braidd (cargo build --release, or --braidd)"
[ -x "$pktgen" ] || die "no braid-pktgen beside braidd (cargo build --release -p braid-tools)"

run_dir=/tmp/braid-lab/$prefix
work=$(mktemp -d /tmp/braid-profile.XXXXXX)
helpers=()
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

"$LAB" up --prefix "$prefix" --queues 1 --workers 1 --nat >/dev/null
"$LAB" start --prefix "$prefix" --braidd "$braidd" >/dev/null
edge_pid=$(cat "$run_dir/edge.pid")
hub_pid=$(cat "$run_dir/hub.pid")
bin=$(dirname "$braidd")
wait_probed
lan_mac=$(ip netns exec "$prefix-edge" cat /sys/class/net/lan0/address)
# A sink on the internet host takes every frame off its eth0 (AF_XDP), so that its kernel's
# answers (port unreachable) add nothing to what is sampled; net keeps its MAC.
inet_mac=$(ip netns exec "$prefix-inet" cat /sys/class/net/eth0/address)
ip -n "$prefix-net" neigh replace "$INET_HOST" lladdr "$inet_mac" dev i0 nud permanent
ip netns exec "$prefix-inet" "$pktgen" sink --iface eth0 --duration $((seconds + 10)) \
    --idle 2 --json --quiet >"$work/sink.json" 2>"$work/sink.log" &
helpers+=($!)
sink_pid=$!
wait_xdp inet eth0

# The load: bounded by --duration (the sampling window and a second on each side).
ip netns exec "$prefix-lan" "$pktgen" gen --iface eth0 --dst-mac "$lan_mac" --src-ip "$LAN_HOST" \
    --dst-ip "$INET_HOST" --flows 4 --size "$size" --rate "$rate" --duration $((seconds + 3)) \
    --json --quiet >"$work/gen.json" 2>"$work/gen.log" &
helpers+=($!)
gen_pid=$!
sleep 1.5
note "sampling braidd (edge $edge_pid, hub $hub_pid) for $seconds s at rate $rate, $size-byte frames"
perf record -q -F 997 -g -p "$edge_pid" -o "$work/edge.perf" -- sleep "$seconds" 2>/dev/null &
edge_perf=$!
perf record -q -F 997 -g -p "$hub_pid" -o "$work/hub.perf" -- sleep "$seconds" 2>/dev/null &
hub_perf=$!
wait "$edge_perf" "$hub_perf"
wait "$gen_pid" || true
wait "$sink_pid" || true

{
    echo "generator: $(cat "$work/gen.json")"
    echo "sink: $(cat "$work/sink.json")"
    for role in edge hub; do
        echo
        echo "== $role: self time by binary (perf report --no-children --sort dso)"
        perf report -i "$work/$role.perf" --stdio --no-children --sort dso -g none 2>/dev/null |
            grep -v '^#' | grep -v '^$' | head -8
        echo "== $role: self time by symbol (--sort dso,symbol, at least 0.7 %)"
        perf report -i "$work/$role.perf" --stdio --no-children --sort dso,symbol \
            --percent-limit 0.7 -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
    done
} | sed 's/ *-  *- *$//' | tee "$work/report.txt"
