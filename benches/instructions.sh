#!/usr/bin/env bash
# benches/instructions.sh: instructions a criterion bench spends per batch, counted by callgrind.
# A count of instructions does not move with the machine's load, so two trees can be compared
# one after the other on a noisy machine (benches/RESULTS.md,
# "Own addresses found by hashing (2026-12-02, EPYC)").
#
#   benches/instructions.sh [--function F] BINARY FILTER
#
#   --function F   the function counted per call, all it calls included
#                  (default: Pipeline::process_batch, one batch of 64 frames)
#
# BINARY is a bench binary (`cargo bench -p braid-benches --no-run`), FILTER criterion's filter
# naming one benchmark, e.g. 'in place/64B'. The bench runs twice under callgrind, with
# --profile-time 1 and 4; what the second run spent more, divided by its more calls, is one
# call's cost with the bench's setup (tables, sessions, handshakes) cancelled out.
set -euo pipefail

function=Pipeline::process_batch
die() { echo "instructions.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
    case $1 in
        --function) [ $# -ge 2 ] || die "--function needs a name"; function=$2; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --*) die "unknown option $1" ;;
        *) break ;;
    esac
done
[ $# -eq 2 ] || die "give a bench binary and a filter (see --help)"
binary=$1 filter=$2
[ -x "$binary" ] || die "not an executable: $binary"
command -v valgrind >/dev/null || die "valgrind is not installed"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Calls of the function (a name ending in F) and their inclusive instructions, from callgrind's
# call arcs: a `calls=N` line is followed by the arc's position and cost.
count() {
    valgrind --tool=callgrind --compress-strings=no --compress-pos=no \
        --callgrind-out-file="$out/cg.$1" "$binary" --bench --profile-time "$1" "$filter" \
        >"$out/log.$1" 2>&1 || { tail -n 5 "$out/log.$1" >&2; die "the bench failed under callgrind"; }
    awk -v f="$function" '
        /^cfn=/ { callee = substr($0, 5); next }
        /^calls=/ {
            if (substr(callee, length(callee) - length(f) + 1) == f) { split($1, c, "="); n += c[2]; arc = 1 }
            next
        }
        arc { cost += $2; arc = 0 }
        END { printf "%d %d\n", n, cost }' "$out/cg.$1"
}

read -r calls1 cost1 < <(count 1)
read -r calls4 cost4 < <(count 4)
[ "$calls4" -gt "$calls1" ] || die "no more calls of $function in the longer run ($calls1, $calls4): does the filter name a benchmark?"
awk -v b="$binary" -v f="$function" -v c1="$calls1" -v i1="$cost1" -v c4="$calls4" -v i4="$cost4" \
    'BEGIN { printf "%s: %.1f instructions a call of %s (%d and %d calls)\n", b, (i4 - i1) / (c4 - c1), f, c1, c4 }'
