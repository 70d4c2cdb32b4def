#!/usr/bin/env bash
# benches/failover.sh: how fast a TCP flow recovers when one of two uplinks dies, braid against the
# kernel's static multipath, in one run on the lab topology with the link emulator in both ISP
# paths (tools/braid-lab --linkem). Needs root. See benches/RESULTS.md ("Failover").
#
#   P-lan ── lan0 [P-edge] wan1 ── [P-isp: emulator, isp1 100 Mbit/s] ──┐
#                          wan2 ── [P-isp: emulator, isp2 200 Mbit/s] ── P-net ── wan0 [P-hub]
#   (braid-goodput send)                                                   └── P-inet (braid-goodput sink)
#
# Per variant, on the same lab, one after the other:
#   1. the reference: isp1 cut, a flow over isp2 alone; its steady goodput is the surviving link's
#      rate (through that variant's tunnel, on this machine's CPU).
#   2. the run: one TCP flow (Cubic unless --cc) LAN -> internet host for --secs (8 s);
#      `braid-lab cut isp1` (both directions blackholed, no carrier change) at --cut (3 s),
#      `braid-lab restore isp1` at --restore (6 s). The sink counts the bytes it receives per 100 ms.
# Variants:
#   braid   braidd at both ends, per-packet bonding 1:2, link health at its defaults (probe every
#           50 ms, down after 200 ms without an answer); the hub masquerades (braid-lab --nat).
#   kernel  benches/lab.sh's recipe: a VXLAN tunnel per uplink, iptables `statistic --mode nth`
#           marking 1 packet in 3 for isp1 and the rest for isp2, fwmark rules into the tunnels, the
#           hub masquerades. Here the hub splits its packets to the LAN the same way (the flow's ACKs
#           take both links, as braid's do) and the edge clamps the MSS to the tunnels' MTU. Static:
#           nothing notices the cut.
# Failover time: from the cut until the goodput holds 90 % of the reference for 3 intervals in a row
# (braid-goodput report); "never" if not before the restore.
set -euo pipefail
export LC_ALL=C

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SELF_DIR
readonly ROOT=$SELF_DIR/..
readonly LAB=$ROOT/tools/braid-lab
readonly INET_HOST=203.0.113.130
readonly SHARE=90
readonly HOLD=3

usage() {
    cat <<'EOF'
usage: benches/failover.sh [options]          (root)

  --smoke          a short run (2 s flows, cut at 0.7 s, restore at 1.4 s): CI checks start and stop
  --secs S         seconds of the measured flow (default 8)
  --cut S          seconds into the flow to cut isp1 (default 3)
  --restore S      seconds into the flow to restore it (default 6)
  --ref-secs S     seconds of each reference flow over isp2 alone (default 4)
  --rate1 R        isp1's rate each way (default 100mbit)
  --rate2 R        isp2's rate each way (default 200mbit)
  --delay D        one-way delay the emulator adds on both paths, e.g. 10ms (default none)
  --cc NAME        the sender's TCP congestion control (default cubic)
  --health K=V,..  braid's [health] settings instead of the defaults, e.g. interval_ms=25,down_after=4
  --prefix P       lab namespace prefix (default bfail)
  --bin DIR        braidd, braidctl, braid-goodput, braid-linkem (default: $CARGO_TARGET_DIR or
                   target/, release)
  --out DIR        keep the series, events, logs, table and chart there (default: a temp dir)
  --save           copy the chart to benches/failover.svg
EOF
}

die() {
    echo "failover.sh: $*" >&2
    exit 1
}

note() { echo "failover.sh: $*" >&2; }

# shellcheck source=benches/common.sh
. "$SELF_DIR/common.sh"

smoke=0
save=0
secs=8
cut_at=3
restore_at=6
ref_secs=4
rate1=100mbit
rate2=200mbit
delay=
cc=cubic
health=
prefix=bfail
bin=
out=
while [ $# -gt 0 ]; do
    case "$1" in
    --smoke)
        smoke=1
        shift
        ;;
    --save)
        save=1
        shift
        ;;
    --secs | --cut | --restore | --ref-secs | --rate1 | --rate2 | --delay | --cc | --health | --prefix | --bin | --out)
        [ $# -ge 2 ] || die "$1 needs a value"
        case "$1" in
        --secs) secs=$2 ;;
        --cut) cut_at=$2 ;;
        --restore) restore_at=$2 ;;
        --ref-secs) ref_secs=$2 ;;
        --rate1) rate1=$2 ;;
        --rate2) rate2=$2 ;;
        --delay) delay=$2 ;;
        --cc) cc=$2 ;;
        --health) health=$2 ;;
        --prefix) prefix=$2 ;;
        --bin) bin=$2 ;;
        --out) out=$2 ;;
        esac
        shift 2
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown option $1 (--help)" ;;
    esac
done
if [ "$smoke" -eq 1 ]; then
    secs=2
    cut_at=0.7
    restore_at=1.4
    ref_secs=1.5
fi
for v in "$secs" "$cut_at" "$restore_at" "$ref_secs"; do
    [[ $v =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "not a number of seconds: $v"
done
awk -v c="$cut_at" -v r="$restore_at" -v s="$secs" 'BEGIN { exit !(0 < c && c < r && r < s) }' ||
    die "want 0 < --cut < --restore < --secs"
[[ -z $health || $health =~ ^[a-z_]+=[a-z0-9]+(,[a-z_]+=[a-z0-9]+)*$ ]] ||
    die "bad --health: $health (K=V,K=V, e.g. interval_ms=25,down_after=4)"
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, AF_XDP)"
command -v jq >/dev/null || die "needs jq (reads braidctl links --json)"
"$LAB" help | grep -q -- --linkem || die "$LAB has no link emulator (--linkem, cut, restore)"
bin=${bin:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
for tool in braidd braidctl braid-goodput braid-linkem; do
    [ -x "$bin/$tool" ] || die "no $tool in $bin (cargo build --release -p braid-dataplane -p braid-control -p braid-tools --bins, or --bin)"
done
goodput=$bin/braid-goodput
grep -qw -- "$cc" /proc/sys/net/ipv4/tcp_available_congestion_control ||
    die "congestion control $cc is not available ($(cat /proc/sys/net/ipv4/tcp_available_congestion_control))"
if ip netns list | awk '{print $1}' | grep -q "^$prefix-"; then
    die "namespaces $prefix-* exist: another lab runs under this prefix (--prefix, or braid-lab down --prefix $prefix)"
fi

run_dir=/tmp/braid-lab/$prefix
work=$(mktemp -d /tmp/braid-failover.XXXXXX)
helpers=()
lab_up=0

cleanup() {
    local rc=$?
    set +e
    for p in "${helpers[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${helpers[@]}"; do wait "$p" 2>/dev/null; done
    # braidd's logs (link events, counters) go with the lab: keep them.
    for role in edge hub linkem; do cp "$run_dir/$role.log" "$work/$role.log" 2>/dev/null; done
    [ "$lab_up" -eq 0 ] || "$LAB" down --prefix "$prefix" >/dev/null 2>&1
    if [ -n "$out" ]; then
        mkdir -p "$out" && cp -r "$work"/. "$out"/
        note "results in $out"
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Sleeps until Unix time $1 (returns at once if it has passed).
sleep_until() {
    local d
    d=$(awk -v t="$1" -v n="$(now)" 'BEGIN { d = t - n; printf "%.3f", (d > 0 ? d : 0) }')
    sleep "$d"
}

# Milliseconds from Unix time $1 to $2.
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }

# isp1's health at braidd $1: true or false.
isp1_up() { links "$1" | jq -r '.links[] | select(.name == "isp1") | .health.up'; }

# Waits up to 10 s until every link is up and has answered a probe at both ends.
wait_probed() {
    local _ role ok
    for _ in $(seq 100); do
        ok=1
        for role in edge hub; do
            [ "$(links "$role" | jq '[.links[].health | .up and .rtt_us != null] | all')" = true ] || ok=0
        done
        [ "$ok" -eq 0 ] || return 0
        sleep 0.1
    done
    die "braid: links still unprobed after 10 s (logs in $work)"
}

# Waits (polling every 25 ms, until Unix time $2 at most) until isp1's health is $1 at both ends;
# prints the time that took per end in ms from Unix time $3, or "-" for an end that did not get there.
watch_isp1() {
    local want=$1 until=$2 from=$3 t edge=- hub=-
    while [ "$edge" = - ] || [ "$hub" = - ]; do
        t=$(now)
        [ "$edge" != - ] || [ "$(isp1_up edge)" != "$want" ] || edge=$(ms_between "$from" "$t")
        [ "$hub" != - ] || [ "$(isp1_up hub)" != "$want" ] || hub=$(ms_between "$from" "$t")
        awk -v t="$(now)" -v u="$until" 'BEGIN { exit !(t < u) }' || break
        sleep 0.025
    done
    echo "edge $edge ms, hub $hub ms"
}

# Follows braidd $1's log (edge or hub) until process $2 ends, printing its isp1 events stamped with
# the Unix time they were read at. braidd logs a change at its supervisor's next round (every 100 ms).
follow_isp1() {
    tail -n 0 -F --pid="$2" "$run_dir/$1.log" 2>/dev/null | while IFS= read -r line; do
        case "$line" in
        *"/isp1 up"* | *"/isp1 down"*) echo "$(now) $1 $line" ;;
        esac
    done
}

# From the stamped events in file $1: ms from Unix time $3 to the first "$2" (up or down) of each
# end after it.
event_delays() {
    awk -v what="$2" -v from="$3" '
        $5 ~ /\/isp1$/ && $6 == what && $1 >= from && !($2 in at) { at[$2] = $1 }
        END {
            printf "edge %s, hub %s",
                ("edge" in at) ? sprintf("%.0f ms", (at["edge"] - from) * 1000) : "-",
                ("hub" in at) ? sprintf("%.0f ms", (at["hub"] - from) * 1000) : "-"
        }' "$1"
}

# What the sender's TCP did over run $1: the counters' change.
tcp_summary() {
    awk 'NR == FNR { a[$1] = $2; next } { d[$1] = $2 - a[$1] }
        END { printf "%d retransmission timeouts, %d segments retransmitted, %d loss probes, %d SACK recoveries",
            d["TcpExtTCPTimeouts"], d["TcpRetransSegs"], d["TcpExtTCPLossProbes"], d["TcpExtTCPSackRecovery"] }' \
        "$work/$1.tcp0" "$work/$1.tcp1"
}

port=5300

# A flow of $2 seconds for run $1 (files $work/$1.*); with a 3rd and 4th argument, isp1 is cut that
# many seconds into it and restored that many; a 5th, "health", follows braid's view of isp1 (from
# its logs: polling braidctl would take CPU from the flow).
flow() {
    local name=$1 len=$2 cut=${3:-} restore=${4:-} health=${5:-} sink t0 sender i role followers=()
    port=$((port + 1))
    ip netns exec "$prefix-inet" "$goodput" sink --listen "$INET_HOST:$port" --accept-timeout 15 \
        --duration "$(awk -v s="$len" 'BEGIN { print s + 10 }')" \
        >"$work/$name.jsonl" 2>"$work/$name.sink.log" &
    sink=$!
    helpers+=("$sink")
    for i in $(seq 100); do
        grep -qs listening "$work/$name.sink.log" && break
        kill -0 "$sink" 2>/dev/null || die "$name: the sink exited: $(cat "$work/$name.sink.log")"
        [ "$i" -lt 100 ] || die "$name: the sink does not listen after 5 s"
        sleep 0.05
    done
    tcp_counters >"$work/$name.tcp0"
    t0=$(now)
    ip netns exec "$prefix-lan" "$goodput" send --to "$INET_HOST:$port" --secs "$len" \
        >"$work/$name.send.json" 2>&1 &
    sender=$!
    helpers+=("$sender")
    if [ "$health" = health ]; then
        for role in edge hub; do
            follow_isp1 "$role" "$sender" >>"$work/$name.links" &
            followers+=($!)
            helpers+=($!)
        done
    fi
    : >"$work/$name.events"
    if [ -n "$cut" ]; then
        sleep_until "$(awk -v a="$t0" -v b="$cut" 'BEGIN { printf "%.6f", a + b }')"
        echo "cut_command $(now)" >>"$work/$name.events"
        "$LAB" cut isp1 --prefix "$prefix" >/dev/null
        echo "cut $(now)" >>"$work/$name.events"
        sleep_until "$(awk -v a="$t0" -v b="$restore" 'BEGIN { printf "%.6f", a + b }')"
        "$LAB" restore isp1 --prefix "$prefix" >/dev/null
        echo "restore $(now)" >>"$work/$name.events"
    fi
    wait "$sender" || note "$name: the sender failed: $(cat "$work/$name.send.json")"
    echo "stop $(now)" >>"$work/$name.events"
    tcp_counters >"$work/$name.tcp1"
    wait "$sink" || note "$name: the sink failed: $(tail -n 1 "$work/$name.sink.log")"
    [ -s "$work/$name.jsonl" ] || die "$name: the sink counted nothing (logs in $work)"
    if [ "${#followers[@]}" -gt 0 ]; then
        wait "${followers[@]}" || true
        local c r
        c=$(awk '$1 == "cut" { print $2 }' "$work/$name.events")
        r=$(awk '$1 == "restore" { print $2 }' "$work/$name.events")
        {
            echo "$name: isp1 out of use (health, braidd's log, up to 100 ms late) after the cut: $(event_delays "$work/$name.links" down "$c")"
            echo "$name: isp1 back in use after the restore: $(event_delays "$work/$name.links" up "$r")"
        } >>"$work/$name.health"
    fi
}

# The reference of variant $1: isp1 cut, a flow over isp2 alone. $2 = "health": wait (5 s at most)
# until braid has taken isp1 out at both ends first, and back in after the restore.
reference() {
    local name=$1-isp2 t r
    "$LAB" cut isp1 --prefix "$prefix" >/dev/null
    t=$(now)
    if [ "$2" = health ]; then
        r=$(watch_isp1 false "$(awk -v t="$t" 'BEGIN { printf "%.6f", t + 5 }')" "$t")
        [[ $r != *" - "* ]] || die "$1: isp1 still in use 5 s after the cut: $r"
        echo "$name: isp1 down (health, braidctl every 25 ms) after the cut: $r" >>"$work/$1.health"
    fi
    flow "$name" "$ref_secs"
    "$LAB" restore isp1 --prefix "$prefix" >/dev/null
    t=$(now)
    if [ "$2" = health ]; then
        r=$(watch_isp1 true "$(awk -v t="$t" 'BEGIN { printf "%.6f", t + 5 }')" "$t")
        [[ $r != *" - "* ]] || die "$1: isp1 still out of use 5 s after the restore: $r"
        echo "$name: isp1 up (health, braidctl every 25 ms) after the restore: $r" >>"$work/$1.health"
    fi
}

# ---- the lab -------------------------------------------------------------------------------------

note "lab $prefix: emulator on both ISP paths, isp1 $rate1, isp2 $rate2${delay:+, delay $delay each way}, masquerade at the hub"
delay_flags=()
[ -z "$delay" ] || delay_flags=(--delay1 "$delay" --delay2 "$delay")
lab_up=1
"$LAB" up --prefix "$prefix" --queues 1 --workers 1 --linkem --linkem-bin "$bin/braid-linkem" \
    --rate1 "$rate1" --rate2 "$rate2" "${delay_flags[@]}" --nat --braidd "$bin/braidd" >/dev/null
# The sender's congestion control by its route (a namespace may only default to the algorithms of
# tcp_allowed_congestion_control, a host-wide list).
ip -n "$prefix-lan" route replace default via 198.18.1.1 dev eth0 congctl "$cc"

# ---- (a) braid -----------------------------------------------------------------------------------

note "braid: braidd at the edge and the hub, per-packet 1:2, link health ${health:-at its defaults}"
if [ -n "$health" ]; then
    # A [health] table in both configs, before their first table (braidd refuses bad values).
    for role in edge hub; do
        awk 'NR == FNR { h = h $0 "\n"; next } !done && /^\[/ { printf "%s", h; done = 1 } { print }' \
            <(printf '[health]\n%s\n\n' "${health//,/$'\n'}") "$run_dir/$role.toml" >"$run_dir/$role.toml.new"
        mv "$run_dir/$role.toml.new" "$run_dir/$role.toml"
    done
fi
"$LAB" start --prefix "$prefix" --braidd "$bin/braidd" >/dev/null
wait_probed
note "braid: reference over isp2 alone ($ref_secs s)"
reference braid health
note "braid: $secs s flow, isp1 cut at $cut_at s, restored at $restore_at s"
flow braid "$secs" "$cut_at" "$restore_at" health
"$LAB" stop --prefix "$prefix" >/dev/null

# ---- (b) the kernel ------------------------------------------------------------------------------

note "kernel: VXLAN per uplink, iptables statistic nth 1:2 at both ends, fwmark rules"
kernel_recipe_up

note "kernel: reference over isp2 alone ($ref_secs s)"
kernel_split isp2
reference kernel -
kernel_split nth
note "kernel: $secs s flow, isp1 cut at $cut_at s, restored at $restore_at s"
flow kernel "$secs" "$cut_at" "$restore_at"

# ---- the table and the chart ---------------------------------------------------------------------

commit=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
{
    echo "braid failover bench: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $commit"
    echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
    echo "command: benches/failover.sh$([ "$smoke" -eq 1 ] && echo " --smoke") --secs $secs --cut $cut_at --restore $restore_at --ref-secs $ref_secs --rate1 $rate1 --rate2 $rate2${delay:+ --delay $delay} --cc $cc"
    echo "goodput in Mbit/s: alone = the reference over isp2 alone (steady, after its first second);"
    echo "before = the 2 s before the cut; during = cut to restore; after = 1 s after the restore to the end;"
    echo "failover = from the cut to the end of the first of $HOLD intervals in a row, all after the cut,"
    echo "at $SHARE % of alone or more (at most one interval later than the goodput came back)"
    echo
    "$goodput" report --share "$SHARE" --hold "$HOLD" \
        --title "One TCP flow, isp1 ($rate1) cut at ${cut_at} s and restored at ${restore_at} s; isp2 $rate2${delay:+; $delay each way}; TCP $cc" \
        --svg "$work/failover.svg" --json "$work/summary.jsonl" \
        --run "braid=$work/braid.jsonl" --events "braid=$work/braid.events" \
        --reference "braid=$work/braid-isp2.jsonl" \
        --run "kernel=$work/kernel.jsonl" --events "kernel=$work/kernel.events" \
        --reference "kernel=$work/kernel-isp2.jsonl"
    echo
    for v in braid kernel; do
        echo "$v: \`braid-lab cut isp1\` took $(awk '$1 == "cut_command" { s = $2 } $1 == "cut" { c = $2 }
            END { printf "%.0f", (c - s) * 1000 }' "$work/$v.events") ms; the cut instant is its return (the emulator"
        echo "  cuts when it accepts the request, polling every 50 ms, and answers at once)"
    done
    cat "$work/braid.health"
    for v in braid kernel; do echo "$v: the sender's TCP over the flow: $(tcp_summary "$v")"; done
} | tee "$work/table.txt"
if [ "$save" -eq 1 ]; then
    cp "$work/failover.svg" "$SELF_DIR/failover.svg"
    note "chart saved to benches/failover.svg"
fi
