#!/usr/bin/env bash
# benches/idle.sh: CPU an idle or lightly loaded braidd costs. Brings up the lab (tools/braid-lab,
# its own prefix), starts braidd at both ends, lets them settle, then reads each thread's CPU time
# (nanoseconds on the CPU, /proc/PID/task/TID/schedstat) over a window with no traffic but what
# braid itself sends (link probes and their answers, ARP refreshes), or with --pps N, N datagrams
# of 64 bytes a second from the LAN host to an echo on the internet host and back (braid-xfer
# udp-send / udp-echo), so each end forwards N a second each way. Prints the share of one core per
# daemon and per thread, and with --pps what came back. Needs root. See benches/RESULTS.md.
#
#   benches/idle.sh [--braidd PATH] [--seconds N] [--workers N] [--prefix P] [--pps N --xfer PATH]
set -euo pipefail

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly LAB=$SELF_DIR/../tools/braid-lab
braidd=
seconds=30
workers=2
prefix=bidle
pps=0
xfer=$SELF_DIR/../target/release/braid-xfer
while [ $# -gt 0 ]; do
    case "$1" in
    --braidd | --seconds | --workers | --prefix | --pps | --xfer)
        [ $# -ge 2 ] || { echo "idle.sh: $1 needs a value" >&2; exit 2; }
        case "$1" in
        --braidd) braidd=$2 ;;
        --seconds) seconds=$2 ;;
        --workers) workers=$2 ;;
        --prefix) prefix=$2 ;;
        --pps) pps=$2 ;;
        --xfer) xfer=$2 ;;
        esac
        shift 2
        ;;
    -h | --help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "idle.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "idle.sh: needs root (network namespaces)" >&2; exit 1; }
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -ge 1 ] && [ "$seconds" -le 600 ] ||
    { echo "idle.sh: --seconds must be 1 to 600" >&2; exit 2; }
[[ "$pps" =~ ^[0-9]+$ ]] && [ "$pps" -le 100000 ] ||
    { echo "idle.sh: --pps must be 0 to 100000" >&2; exit 2; }
[ "$pps" -eq 0 ] || [ -x "$xfer" ] ||
    { echo "idle.sh: no braid-xfer at $xfer (cargo build --release -p braid-tools, or --xfer)" >&2; exit 2; }

lab_args=(--prefix "$prefix")
start_args=(--prefix "$prefix")
[ -z "$braidd" ] || start_args+=(--braidd "$braidd")
trap '"$LAB" down "${lab_args[@]}" >/dev/null 2>&1 || true' EXIT
"$LAB" up "${lab_args[@]}" --queues "$workers" --workers "$workers" >/dev/null
"$LAB" start "${start_args[@]}" >/dev/null
run_dir=/tmp/braid-lab/$prefix
# "ROLE THREAD NS" for every thread of both daemons: nanoseconds on the CPU so far.
cpu() {
    local role pid t
    for role in edge hub; do
        pid=$(cat "$run_dir/$role.pid")
        for t in /proc/"$pid"/task/*; do
            echo "$role $(cat "$t/comm") $(awk '{ print $1 }' "$t/schedstat")"
        done
    done
}

sleep 3 # past the start: first ARP exchanges, gateway checks, the first probes
sender=
if [ "$pps" -gt 0 ]; then
    # Bounded: pps * (seconds + 4) datagrams, and the echo ends 5 s after the last one.
    ip netns exec "$prefix-inet" "$xfer" udp-echo --listen 203.0.113.130:9000 --timeout 5 \
        >/dev/null &
    sleep 0.3
    ip netns exec "$prefix-lan" "$xfer" udp-send --to 203.0.113.130:9000 --size 22 \
        --pps "$pps" --count $((pps * (seconds + 4))) --timeout $((seconds + 10)) \
        >"$run_dir/udp-send.json" &
    sender=$!
    sleep 2 # the flow and the workers' polling settle
fi
before=$(cpu)
sleep "$seconds"
after=$(cpu)
if [ -n "$sender" ]; then
    wait "$sender" || true
    echo "traffic: $pps datagrams/s each way; udp-send: $(cat "$run_dir/udp-send.json")"
fi
# Per thread, then per daemon, as % of one core.
join <(echo "$before" | awk '{ print $1 "/" $2, $3 }' | sort) \
    <(echo "$after" | awk '{ print $1 "/" $2, $3 }' | sort) |
    awk -v s="$seconds" '
        { p = ($3 - $2) / (s * 1e7); split($1, k, "/"); thread[$1] = p; total[k[1]] += p }
        END {
            printf "%-22s %12s\n", "thread", "% of a core"
            for (t in thread) printf "%-22s %12.3f\n", t, thread[t] | "sort"
            close("sort")
            for (r in total) printf "%-22s %12.3f\n", r " (all threads)", total[r]
        }'
