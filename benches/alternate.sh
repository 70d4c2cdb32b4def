#!/usr/bin/env bash
# benches/alternate.sh: compares criterion bench binaries of different trees on a noisy machine.
# Runs each binary in turn, round after round (A B C, A B C, ...), so that a slow spell of the
# machine falls on all of them alike, and prints for each the lowest and the median of
# criterion's estimates over the rounds, and their ratios to the first binary's. See
# benches/RESULTS.md ("The stages alone, and main, against the tree before them").
#
#   benches/alternate.sh [--rounds N] [--filter F] BINARY...
#
#   --rounds N   rounds (default 8)
#   --filter F   criterion's filter: one benchmark of each binary, e.g. '/64B' (default)
#
# A bench binary is what `cargo bench --no-run` builds (target/release/deps/<bench>-<hash>);
# build each tree in its own target directory and pass the binaries in the order to compare.
# Each run is `<binary> --bench --warm-up-time 0.5 --measurement-time 1 <filter>`.
set -euo pipefail

rounds=8
filter=/64B
die() { echo "alternate.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) [ $# -ge 2 ] || die "--rounds needs a number"; rounds=$2; shift 2 ;;
        --filter) [ $# -ge 2 ] || die "--filter needs a value"; filter=$2; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --*) die "unknown option $1" ;;
        *) break ;;
    esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds: not a positive number: $rounds"
[ $# -ge 1 ] || die "no bench binary given (see --help)"
for b in "$@"; do
    [ -x "$b" ] || die "not an executable: $b"
done

# criterion's middle estimate of one run, in its unit (ns, µs or ms) converted to µs.
one_run() {
    "$1" --bench --warm-up-time 0.5 --measurement-time 1 "$filter" 2>&1 |
        awk '$1 == "time:" && $2 ~ /^\[/ && $3 !~ /%/ {
                v = $4; u = $5
                if (u == "ns") v /= 1000; else if (u == "ms") v *= 1000; else if (u == "s") v *= 1e6
                printf "%.3f\n", v; exit
             }'
}

declare -A runs
for r in $(seq "$rounds"); do
    for b in "$@"; do
        v=$(one_run "$b")
        [ -n "$v" ] || die "no estimate from $b for filter '$filter' (round $r)"
        runs[$b]="${runs[$b]:-} $v"
    done
done

printf '%-60s %10s %10s %8s %8s\n' "binary ($filter, µs, $rounds rounds)" lowest median "/first" "/first"
first_min="" first_med=""
for b in "$@"; do
    read -r lo med < <(tr ' ' '\n' <<<"${runs[$b]}" | grep . | sort -g |
        awk '{a[NR] = $1} END {print a[1], a[int((NR + 1) / 2)]}')
    [ -n "$first_min" ] || { first_min=$lo; first_med=$med; }
    printf '%-60s %10.2f %10.2f %8.2f %8.2f\n' "$b" "$lo" "$med" \
        "$(awk -v a="$lo" -v b="$first_min" 'BEGIN {print a / b}')" \
        "$(awk -v a="$med" -v b="$first_med" 'BEGIN {print a / b}')"
done
