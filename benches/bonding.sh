#!/usr/bin/env bash
# benches/bonding.sh: bonding over links of unequal delay and loss, braid against the kernel's
# static multipath, in one run on the lab topology with the link emulator in both ISP paths
# (tools/braid-lab --linkem, docs/LINKEM.md). Needs root. See benches/RESULTS.md ("Bonding over
# links of unequal delay and loss").
#
#   P-lan ── lan0 [P-edge] wan1 ── [P-isp: emulator, isp1 100 Mbit/s, loss] ──┐
#                          wan2 ── [P-isp: emulator, isp2 200 Mbit/s, delay] ── P-net ── wan0 [P-hub]
#   (TCP senders, UDP generator)                                                └── P-inet (sinks)
#
# Rates are the emulator's, both ways. Per variant, on the same lab, for every RTT difference D
# (isp2 gets D/2 more one-way delay each way than isp1) and every loss L on isp1 (random, each
# way), set at run time with `braid-lab linkem set`:
#   - one TCP flow LAN host -> internet host for --secs: its steady goodput (after its first
#     second) and the share of segments the sender retransmitted (the LAN host's TcpRetransSegs
#     over TcpOutSegs);
#   - at L = 0 also four TCP flows side by side (goodput added up), and a UDP stream at 100 Mbit/s
#     of 1024-byte frames (braid-pktgen over AF_XDP, stamped and sequenced): the packets received
#     out of order, lost, and their one-way latency (p50, p99; the links' delay included); for braid
#     also what the hub's reorder windows added to its packets (p99 over all, from braidctl stats).
# Variants:
#   braid   braidd at both ends, per-packet bonding 1:2, one worker each; the hub masquerades.
#   kernel  a VXLAN tunnel per uplink, iptables `statistic --mode nth` 1 packet in 3 for isp1 at
#           both ends, fwmark rules; the hub masquerades (benches/common.sh, as benches/failover.sh).
# Prints a markdown table and writes the points as JSON lines and one TCP flow's goodput against D
# as an SVG chart (braid-goodput bonding).
set -euo pipefail
export LC_ALL=C

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SELF_DIR
readonly ROOT=$SELF_DIR/..
readonly LAB=$ROOT/tools/braid-lab
readonly LAN_HOST=198.18.1.2
readonly INET_HOST=203.0.113.130
readonly UDP_RATE=100mbit
readonly UDP_SIZE=1024
# Frames per send of the UDP generator: one, evenly spaced (82 us apart), as an application's
# stream. In braid-pktgen's default bursts of 64 a millisecond, the burst's share of each link
# queues behind that link's rate, and the two links, 100 and 200 Mbit/s, drain their shares over
# different times: the frames reorder on the wire by that alone, whoever splits them.
readonly UDP_BATCH=1

usage() {
    cat <<'EOF'
usage: benches/bonding.sh [options]          (root)

  --quick          fewer points, shorter: RTT differences 0,20 ms, loss 0,5 %, 4 s flows
  --smoke          a few seconds: RTT difference 10 ms, loss 0,1 %, 2 s flows (CI checks start/stop)
  --secs N         seconds of each TCP flow and UDP stream (default 8)
  --rtt-diffs LIST RTT differences in ms (default 0,10,20,40)
  --losses LIST    loss on isp1 in percent (default 0,1,5)
  --cc NAME        the senders' TCP congestion control (default cubic)
  --prefix P       lab namespace prefix (default bbond)
  --braidd PATH    the daemon; braidctl, braid-goodput, braid-linkem and braid-pktgen are taken
                   from its directory (default: $CARGO_TARGET_DIR or target/, release)
  --out DIR        keep the points, table, chart, series and logs there
  --earliest       also braid with [bond] scheduler = "earliest" (each link's rate given), a
                   third variant, braid-earliest, between braid and the kernel
  --save           copy the chart and the points to benches/bonding.svg and benches/bonding.jsonl
EOF
}

die() {
    echo "bonding.sh: $*" >&2
    exit 1
}

note() { echo "bonding.sh: $*" >&2; }

# shellcheck source=benches/common.sh
. "$SELF_DIR/common.sh"

mode=full
save=0
secs=
rtt_diffs=
losses=
cc=cubic
earliest=0
prefix=bbond
braidd=
out=
args=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
    --quick | --smoke)
        mode=${1#--}
        shift
        ;;
    --save)
        save=1
        shift
        ;;
    --earliest)
        earliest=1
        shift
        ;;
    --secs | --rtt-diffs | --losses | --cc | --prefix | --braidd | --out)
        [ $# -ge 2 ] || die "$1 needs a value"
        case "$1" in
        --secs) secs=$2 ;;
        --rtt-diffs) rtt_diffs=$2 ;;
        --losses) losses=$2 ;;
        --cc) cc=$2 ;;
        --prefix) prefix=$2 ;;
        --braidd) braidd=$2 ;;
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
case "$mode" in
full) read -r def_secs def_diffs def_losses <<<"8 0,10,20,40 0,1,5" ;;
quick) read -r def_secs def_diffs def_losses <<<"4 0,20 0,5" ;;
smoke) read -r def_secs def_diffs def_losses <<<"2 10 0,1" ;;
esac
secs=${secs:-$def_secs}
rtt_diffs=${rtt_diffs:-$def_diffs}
losses=${losses:-$def_losses}
if ! [[ $secs =~ ^[0-9]+(\.[0-9]+)?$ ]] || ! awk -v s="$secs" 'BEGIN { exit !(s >= 1.5 && s <= 600) }'; then
    die "--secs: from 1.5 to 600 seconds (the first second is left out of the goodput): $secs"
fi
[[ $rtt_diffs =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--rtt-diffs: ms, comma separated: $rtt_diffs"
[[ $losses =~ ^[0-9]+(\.[0-9]+)?(,[0-9]+(\.[0-9]+)?)*$ ]] || die "--losses: percent, comma separated: $losses"
for d in ${rtt_diffs//,/ }; do [ "$d" -le 2000 ] || die "--rtt-diffs: at most 2000 ms: $d"; done
for l in ${losses//,/ }; do awk -v l="$l" 'BEGIN { exit !(l < 100) }' || die "--losses: below 100 %: $l"; done
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, AF_XDP)"
command -v jq >/dev/null || die "needs jq"
braidd=${braidd:-${CARGO_TARGET_DIR:-$ROOT/target}/release/braidd}
bin=$(dirname "$braidd")
for tool in braidd braidctl braid-goodput braid-linkem braid-pktgen; do
    [ -x "$bin/$tool" ] || die "no $tool in $bin (cargo build --release --workspace --bins, or --braidd)"
done
goodput=$bin/braid-goodput
pktgen=$bin/braid-pktgen
require_cc "$cc"
require_free_prefix

run_dir=/tmp/braid-lab/$prefix
work=$(mktemp -d /tmp/braid-bonding.XXXXXX)
helpers=()
lab_up=0

trap bench_cleanup EXIT
trap 'exit 130' INT TERM

points=$work/points.jsonl
: >"$points"
port=5400

# Appends a point: variant $1, RTT difference $2, loss $3, the measure as a jq object built from
# the jq arguments that follow ($-names in single quotes are jq's).
# shellcheck disable=SC2016
point() {
    local variant=$1 diff=$2 loss=$3 filter=$4
    shift 4
    jq -nc --arg v "$variant" --argjson d "$diff" --argjson l "$loss" "$@" \
        "{variant: \$v, rtt_diff_ms: \$d, loss_pct: \$l} + $filter" >>"$points"
}

# The emulator's impairments: RTT difference $1 ms (half of it on isp2 each way), loss $2 % on
# isp1 each way. Frames in flight keep their old times: a second to let them go.
impair() {
    local half
    half=$(awk -v d="$1" 'BEGIN { print d / 2 }')
    "$LAB" linkem --prefix "$prefix" set --delay isp1=0 --delay "isp2=${half}ms" --loss "isp1=$2%" \
        --loss isp2=0 >/dev/null
    sleep 1
}

# $2 TCP flows side by side for run $1 (files $work/$1.*): sets tcp_goodput (Mbit/s, added up)
# and tcp_retrans (percent), each "null" when not measured.
tcp_flows() {
    local name=$1 n=$2 i p sinks=() senders=() files=()
    for i in $(seq "$n"); do
        port=$((port + 1))
        ip netns exec "$prefix-inet" "$goodput" sink --listen "$INET_HOST:$port" --accept-timeout 15 \
            --duration "$(awk -v s="$secs" 'BEGIN { print s + 10 }')" \
            >"$work/$name.$i.jsonl" 2>"$work/$name.$i.sink.log" &
        sinks+=($!)
        helpers+=($!)
        files+=("$work/$name.$i.jsonl")
    done
    for i in $(seq "$n"); do
        for p in $(seq 100); do
            grep -qs listening "$work/$name.$i.sink.log" && break
            [ "$p" -lt 100 ] || die "$name: sink $i does not listen after 5 s"
            sleep 0.05
        done
    done
    tcp_counters >"$work/$name.tcp0"
    for i in $(seq "$n"); do
        ip netns exec "$prefix-lan" "$goodput" send --to "$INET_HOST:$((port - n + i))" --secs "$secs" \
            >"$work/$name.$i.send.json" 2>&1 &
        senders+=($!)
        helpers+=($!)
    done
    for p in "${senders[@]}"; do wait "$p" || note "$name: a sender failed"; done
    tcp_counters >"$work/$name.tcp1"
    for p in "${sinks[@]}"; do wait "$p" || note "$name: a sink failed"; done
    tcp_goodput=$("$goodput" steady "${files[@]}")
    tcp_retrans=$(awk 'NR == FNR { a[$1] = $2; next } { d[$1] = $2 - a[$1] }
        END { if (d["TcpOutSegs"] > 0) printf "%.3f", 100 * d["TcpRetransSegs"] / d["TcpOutSegs"]; else printf "null" }' \
        "$work/$name.tcp0" "$work/$name.tcp1")
}

mac() { ip netns exec "$prefix-$1" cat "/sys/class/net/$2/address"; }

# The hub's reorder windows, summed over its workers, as JSON (braid variants; {} otherwise).
hub_windows() {
    local sock=$run_dir/hub.sock
    if [ ! -S "$sock" ]; then
        echo '{}'
        return
    fi
    "$bin/braidctl" --socket "$sock" stats --json | jq -c '[.workers[].reorder] | {
        passed: (map(.in_order + .late + .repaired) | add),
        held: (map(.held_us // []) | add | group_by(.[0]) | map([.[0][0], (map(.[1]) | add)]))}'
}

# What the hub's windows added to the packets that passed them between the readings $1 and $2
# (hub_windows): the 99th percentile over every packet (0 for those not held), in ms, from the
# buckets' upper edges; null without readings.
# shellcheck disable=SC2016
window_p99_ms() {
    jq -n --argjson a "$1" --argjson b "$2" '
        if ($a | has("passed")) and ($b | has("passed")) then
            ($a.held | map({key: (.[0] | tostring), value: .[1]}) | from_entries) as $before
            | [$b.held[] | [.[0], .[1] - ($before[.[0] | tostring] // 0)] | select(.[1] > 0)] as $held
            | ($b.passed - $a.passed) as $passed
            | ($held | map(.[1]) | add // 0) as $n
            | (($passed * 0.99) | ceil) as $rank
            | if $passed <= 0 then null
              elif $rank <= $passed - $n then 0
              else (reduce $held[] as $h ({seen: ($passed - $n), at: null};
                    if .at == null and .seen + $h[1] >= $rank then .at = $h[0] else . end
                    | .seen += $h[1]) | .at) / 1000
              end
        else null end'
}

# The UDP stream for run $1: braid-pktgen's sink on the internet host's eth0 (AF_XDP: the host's
# kernel sees nothing meanwhile), the generator on the LAN host's. Writes $work/$1.udp.json, and
# for braid $work/$1.window (what the hub's reorder windows added, p99 ms).
udp_stream() {
    local name=$1 sink sock=$work/$1.sink.sock windows
    ip netns exec "$prefix-inet" "$pktgen" sink --iface eth0 --control "$sock" \
        --duration "$(awk -v s="$secs" 'BEGIN { print s + 30 }')" --quiet \
        >"$work/$name.sink.txt" 2>"$work/$name.sink.log" &
    sink=$!
    helpers+=("$sink")
    wait_xdp inet eth0
    windows=$(hub_windows)
    ip netns exec "$prefix-lan" "$pktgen" run --tx eth0 --sink-control "$sock" \
        --dst-mac "$(mac edge lan0)" --src-ip "$LAN_HOST" --dst-ip "$INET_HOST" --size "$UDP_SIZE" \
        --rate "$UDP_RATE" --batch "$UDP_BATCH" --duration "$secs" --json --quiet >"$work/$name.udp.json" 2>"$work/$name.gen.log" ||
        die "$name: the generator failed: $(tail -n 3 "$work/$name.gen.log")"
    kill -TERM "$sink"
    wait "$sink" || true
    window_p99_ms "$windows" "$(hub_windows)" >"$work/$name.window"
}

# Every point of variant $1 on the lab as it stands.
# shellcheck disable=SC2016
sweep() {
    local v=$1 d l r n
    for d in ${rtt_diffs//,/ }; do
        for l in ${losses//,/ }; do
            impair "$d" "$l"
            r=$v-d$d-l$l
            for n in 1 4; do
                # Four flows at no loss only.
                [ "$n" -eq 1 ] || awk -v l="$l" 'BEGIN { exit !(l == 0) }' || break
                tcp_flows "$r-tcp$n" "$n"
                note "$v: RTT difference $d ms, loss $l %: $n TCP flow(s) $tcp_goodput Mbit/s, $tcp_retrans % retransmitted"
                point "$v" "$d" "$l" '{kind: "tcp", flows: $n, goodput_mbps: $g, retrans_pct: $x}' \
                    --argjson n "$n" --argjson g "$tcp_goodput" --argjson x "$tcp_retrans"
            done
            awk -v l="$l" 'BEGIN { exit !(l == 0) }' || continue
            udp_stream "$r"
            point "$v" "$d" "$l" '{kind: "udp", rate_mbps: $rate} + ($u[0] | {
                    reordered_pct: (if .rx_packets > 0 then 100 * .reordered / .rx_packets else null end),
                    lost_pct: (if .tx_packets > 0 then 100 * .lost / .tx_packets else null end),
                    p50_ms: (if .latency.count > 0 then .latency.p50_ns / 1e6 else null end),
                    p99_ms: (if .latency.count > 0 then .latency.p99_ns / 1e6 else null end)})
                    + (if $w[0] == null then {} else {window_p99_ms: $w[0]} end)' \
                --argjson rate "${UDP_RATE%mbit}" --slurpfile u "$work/$r.udp.json" \
                --slurpfile w "$work/$r.window"
            note "$v: RTT difference $d ms: UDP $(tail -n 1 "$points" | jq -r '"\(.reordered_pct) % out of order, \(.lost_pct) % lost, p99 \(.p99_ms) ms, window p99 \(.window_p99_ms // "-") ms"')"
        done
    done
}

# ---- the lab -------------------------------------------------------------------------------------

note "lab $prefix: emulator on both ISP paths, isp1 100mbit, isp2 200mbit, masquerade at the hub"
lab_up=1
"$LAB" up --prefix "$prefix" --queues 1 --workers 1 --linkem --linkem-bin "$bin/braid-linkem" \
    --rate1 100mbit --rate2 200mbit --nat --braidd "$braidd" >/dev/null
# The senders' congestion control by their route (a namespace may only default to the algorithms
# of tcp_allowed_congestion_control, a host-wide list).
ip -n "$prefix-lan" route replace default via 198.18.1.1 dev eth0 congctl "$cc"
# The UDP sink takes every frame of the internet host's eth0, ARP included: net keeps its MAC.
ip -n "$prefix-net" neigh replace "$INET_HOST" lladdr "$(mac inet eth0)" dev i0 nud permanent

note "braid: braidd at the edge and the hub, per-packet 1:2"
"$LAB" start --prefix "$prefix" --braidd "$braidd" >/dev/null
wait_probed
sweep braid
"$LAB" stop --prefix "$prefix" >/dev/null

if [ "$earliest" -eq 1 ]; then
    note "braid-earliest: the same, each packet on the link where it arrives first"
    sed -i -E -e 's/^\[bond\]$/[bond]\nscheduler = "earliest"/' \
        -e '/^name = "isp1"$/a rate = "100mbit"' -e '/^name = "isp2"$/a rate = "200mbit"' \
        "$run_dir/edge.toml" "$run_dir/hub.toml"
    "$LAB" start --prefix "$prefix" --braidd "$braidd" >/dev/null
    wait_probed
    sweep braid-earliest
    "$LAB" stop --prefix "$prefix" >/dev/null
fi

note "kernel: VXLAN per uplink, iptables statistic nth 1:2 at both ends, fwmark rules"
kernel_recipe_up
kernel_split nth
sweep kernel

# ---- the table and the chart ---------------------------------------------------------------------

commit=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
{
    echo "braid bonding bench: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $commit"
    echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
    echo "command: benches/bonding.sh ${args[*]}"
    echo "isp1 100 Mbit/s, isp2 200 Mbit/s (both ways), weights 1:2, per packet; --secs $secs, TCP $cc;"
    echo "TCP: steady goodput in Mbit/s (segments retransmitted); UDP $UDP_RATE of $UDP_SIZE-byte frames:"
    echo "out of order / lost / one-way latency p99 (the links' delay included) (what braid's reorder"
    echo "windows at the hub added, p99 over every packet)"
    echo
    "$goodput" bonding --points "$points" --svg "$work/bonding.svg" \
        --title "One TCP flow ($cc): isp1 100 Mbit/s with the loss, isp2 200 Mbit/s with the delay"
} | tee "$work/table.md"
if [ "$save" -eq 1 ]; then
    cp "$work/bonding.svg" "$SELF_DIR/bonding.svg"
    cp "$points" "$SELF_DIR/bonding.jsonl"
    note "chart and points saved to benches/bonding.svg and benches/bonding.jsonl"
fi
