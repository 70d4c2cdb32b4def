#!/usr/bin/env bash
# benches/idle.sh: CPU an idle braidd costs. Brings up the lab (tools/braid-lab, its own prefix),
# starts braidd at both ends, lets them settle, then reads each daemon's CPU time (user + system,
# /proc/PID/stat) over a window with no traffic but what braid itself sends (ARP refreshes).
# Prints the share of one core per daemon and per worker. Needs root. See benches/RESULTS.md.
#
#   benches/idle.sh [--braidd PATH] [--seconds N] [--workers N] [--prefix P]
set -euo pipefail

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly LAB=$SELF_DIR/../tools/braid-lab
braidd=
seconds=30
workers=2
prefix=bidle
while [ $# -gt 0 ]; do
    case "$1" in
    --braidd | --seconds | --workers | --prefix)
        [ $# -ge 2 ] || { echo "idle.sh: $1 needs a value" >&2; exit 2; }
        case "$1" in
        --braidd) braidd=$2 ;;
        --seconds) seconds=$2 ;;
        --workers) workers=$2 ;;
        --prefix) prefix=$2 ;;
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

lab_args=(--prefix "$prefix")
start_args=(--prefix "$prefix")
[ -z "$braidd" ] || start_args+=(--braidd "$braidd")
trap '"$LAB" down "${lab_args[@]}" >/dev/null 2>&1 || true' EXIT
"$LAB" up "${lab_args[@]}" --queues "$workers" --workers "$workers" >/dev/null
"$LAB" start "${start_args[@]}" >/dev/null
run_dir=/tmp/braid-lab/$prefix
ticks=$(getconf CLK_TCK)

# utime + stime of a process, in clock ticks.
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

sleep 3 # past the start: first ARP exchanges, gateway checks
declare -A before
for role in edge hub; do
    pid=$(cat "$run_dir/$role.pid")
    before[$role]=$(cpu "$pid")
done
sleep "$seconds"
printf '%-5s %10s %12s %16s\n' end "cpu ticks" "% of a core" "% per worker"
for role in edge hub; do
    pid=$(cat "$run_dir/$role.pid")
    used=$(($(cpu "$pid") - before[$role]))
    awk -v u="$used" -v t="$ticks" -v s="$seconds" -v w="$workers" -v r="$role" \
        'BEGIN { p = 100 * u / t / s; printf "%-5s %10d %12.3f %16.3f\n", r, u, p, p / w }'
done
