#!/usr/bin/env bash
# benches/lab.sh: braid next to the kernel and to the AF_XDP ceiling, in one run on the lab topology
# (tools/braid-lab), measured with braid-pktgen's RFC 2544 search (zero-loss rate, 0.5%-loss rate,
# latency percentiles at the zero-loss rate). Needs root. See benches/RESULTS.md.
#
#  P-lan eth0: braid-pktgen rfc2544 ─ lan0 [P-edge] wan1/wan2 ─ P-net ─ wan0 [P-hub] ─ P-net ─ eth0 P-inet: sink
#
# The same path, the same frame sizes, the same two cores for five edge+hub pairs, one after another:
#   ceiling  braid-pktgen reflect in P-edge (lan0 -> wan1) and P-hub (wan0 -> wan0): AF_XDP
#            forwarding that only rewrites MACs; net routes what comes from e1 to the hub and what
#            comes back from the hub to the internet host. Its frames come from libxdp's program.
#   ceiling-braid  the same reflectors fed by braid's own XDP program (reflect --braid-program).
#   braid    braidd at both ends, per-packet bonding, weights 1:2 (braid-lab's defaults); the hub
#            masquerades the LAN (braid-lab --nat). Its frames come from braid's own XDP program.
#   braid-libxdp  the same, fed by libxdp's default program (braidd --libxdp-program): what braid's
#            program costs.
#   kernel   the Linux kernel doing braid's job: a VXLAN tunnel per uplink, iptables
#            `-m statistic --mode nth` marking 1 packet in 3 for isp1 and the rest for isp2, fwmark
#            rules and policy routing into the tunnels; the hub decapsulates, routes and
#            masquerades (`iptables -t nat ... -j MASQUERADE`, the 2006 recipe's line).
# --no-nat leaves masquerade out of both (the internet then routes the LAN back to the hub).
# The underlay links get MTU 1600 so that 1518-byte frames fit in either tunnel.
set -euo pipefail

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SELF_DIR
readonly ROOT=$SELF_DIR/..
readonly LAB=$ROOT/tools/braid-lab
readonly LAN_HOST=198.18.1.2
readonly INET_HOST=203.0.113.130
readonly UNDERLAY_MTU=1600
# Longest any helper process may live (they are stopped long before; this bounds a crash).
readonly HELPER_SECONDS=3600

usage() {
    cat <<'EOF'
usage: benches/lab.sh [options]          (root)

  --smoke            a few seconds: one size, two short trials per variant (CI checks start/stop)
  --no-nat           neither braid's hub nor the kernel's masquerades
  --sizes LIST       frame sizes, FCS included, or imix (default 64,512,1518)
  --trial SECS       seconds per trial (default 2)
  --max-trials N     trials per size and variant at most (default 10)
  --precision F      search precision, a fraction of the rate (default 0.03)
  --flows N          flows (source ports) of the generator (default 4)
  --prefix P         lab namespace prefix (default bbench)
  --braidd PATH      the daemon (default: $CARGO_TARGET_DIR or target/, release)
  --pktgen PATH      braid-pktgen (default: the same directory)
  --out DIR          keep the JSON results, logs and the table there
EOF
}

die() {
    echo "lab.sh: $*" >&2
    exit 1
}

note() { echo "lab.sh: $*" >&2; }

# shellcheck source=benches/common.sh
. "$SELF_DIR/common.sh"

smoke=0
sizes=
trial=
max_trials=
precision=
flows=4
prefix=bbench
nat=1
braidd=
pktgen=
out=
while [ $# -gt 0 ]; do
    case "$1" in
    --smoke)
        smoke=1
        shift
        ;;
    --no-nat)
        nat=0
        shift
        ;;
    --sizes | --trial | --max-trials | --precision | --flows | --prefix | --braidd | --pktgen | --out)
        [ $# -ge 2 ] || die "$1 needs a value"
        case "$1" in
        --sizes) sizes=$2 ;;
        --trial) trial=$2 ;;
        --max-trials) max_trials=$2 ;;
        --precision) precision=$2 ;;
        --flows) flows=$2 ;;
        --prefix) prefix=$2 ;;
        --braidd) braidd=$2 ;;
        --pktgen) pktgen=$2 ;;
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
    sizes=${sizes:-64}
    trial=${trial:-0.5}
    max_trials=${max_trials:-2}
    precision=${precision:-0.5}
else
    sizes=${sizes:-64,512,1518}
    trial=${trial:-2}
    max_trials=${max_trials:-10}
    precision=${precision:-0.03}
fi
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, AF_XDP)"
target=${CARGO_TARGET_DIR:-$ROOT/target}
braidd=${braidd:-$target/release/braidd}
pktgen=${pktgen:-$(dirname "$braidd")/braid-pktgen}
[ -x "$braidd" ] || die "no braidd at $braidd (cargo build --release, or --braidd)"
[ -x "$pktgen" ] || die "no braid-pktgen at $pktgen (cargo build --release, or --pktgen)"

run_dir=/tmp/braid-lab/$prefix
work=$(mktemp -d /tmp/braid-bench.XXXXXX)
helpers=()

trap bench_cleanup EXIT
trap 'exit 130' INT TERM
# The terminal's stderr, for progress lines written while fd 2 is redirected.
exec 3>&2

nsx() {
    local ns=$1
    shift
    ip netns exec "$prefix-$ns" "$@"
}

mac() { nsx "$1" cat "/sys/class/net/$2/address"; }

# ---- the lab --------------------------------------------------------------------------------------

nat_flag=()
[ "$nat" -eq 1 ] && nat_flag=(--nat)
"$LAB" up --prefix "$prefix" --queues 1 --workers 1 --braidd "$braidd" "${nat_flag[@]}" >/dev/null
for link in edge:wan1 edge:wan2 hub:wan0 net:e1 net:e2 net:h0; do
    ip -n "$prefix-${link%:*}" link set "${link#*:}" mtu "$UNDERLAY_MTU"
done
sed -i -E "/^name = \"wan[0-9]\"$/a mtu = $UNDERLAY_MTU" "$run_dir/edge.toml" "$run_dir/hub.toml"

# The sink takes every frame of the internet host's eth0, ARP included: net keeps its MAC.
ip -n "$prefix-net" neigh replace "$INET_HOST" lladdr "$(mac inet eth0)" dev i0 nud permanent
sock=$work/sink.sock
# (Background processes start through `ip netns exec` itself, not a shell function, so that $! is
# their own pid.)
ip netns exec "$prefix-inet" "$pktgen" sink --iface eth0 --control "$sock" --duration "$HELPER_SECONDS" --quiet \
    >"$work/sink.txt" 2>"$work/sink.log" &
helpers+=($!)
sink_pid=$!
wait_xdp inet eth0

gen=(--tx eth0 --sink-control "$sock" --dst-mac "$(mac edge lan0)" --src-ip "$LAN_HOST"
    --dst-ip "$INET_HOST" --flows "$flows")

# Short low-rate trials until one loses nothing (neighbours resolved, programs attached).
warm_up() {
    local _
    for _ in $(seq 10); do
        if nsx lan "$pktgen" run "${gen[@]}" --rate 1k --duration 0.5 --json --quiet \
            >"$work/$1.warm.json" 2>>"$work/$1.warm.log" &&
            grep -q '"lost": 0,' "$work/$1.warm.json"; then
            return 0
        fi
        sleep 0.5
    done
    die "$1: packets still lost after 10 warm-up trials (logs in $work)"
}

# CPU time of a process in clock ticks (utime + stime), 0 when it is gone.
ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}

# Packets through each hop: generator->edge (the LAN host's eth0 tx), edge->net (e1+e2 rx),
# net->hub (h0 tx), hub->net (h0 rx), net->inet (i0 tx).
hops() {
    {
        nsx lan cat /sys/class/net/eth0/statistics/tx_packets
        nsx net cat /sys/class/net/{e1,e2}/statistics/rx_packets \
            /sys/class/net/h0/statistics/{tx,rx}_packets /sys/class/net/i0/statistics/tx_packets
    } | paste -sd ' '
}

# Runs the search for variant $1; the processes to account for follow as NAME=PID.
measure() {
    local name=$1 p t0 t1 hops0
    shift
    local -A before=()
    for p in "$@"; do before[$p]=$(ticks "${p#*=}"); done
    hops0=$(hops)
    grep '^cpu[0-9]' /proc/stat >"$work/$name.cpu0"
    t0=$(date +%s.%N)
    local TIMEFORMAT='%U %S'
    { time nsx lan "$pktgen" rfc2544 "${gen[@]}" --sizes "$sizes" --trial "$trial" \
        --max-trials "$max_trials" --precision "$precision" --json \
        >"$work/$name.json" 2> >(tee "$work/$name.log" | grep --line-buffered '^size' | sed "s/^/  $name: /" >&3); } \
        2>"$work/$name.gen-time"
    t1=$(date +%s.%N)
    grep '^cpu[0-9]' /proc/stat >"$work/$name.cpu1"
    local hz secs
    hz=$(getconf CLK_TCK)
    secs=$(echo "$t0 $t1" | awk '{print $2 - $1}')
    {
        echo "$name: $secs s"
        awk 'NR == FNR { for (i = 2; i <= 9; i++) a[$1, i] = $i; next }
            { t = 0; for (i = 2; i <= 9; i++) { d[i] = $i - a[$1, i]; t += d[i] }
              if (t == 0) t = 1
              printf "  %-5s busy %3.0f%%  (user %3.0f%%, system %3.0f%%, softirq %3.0f%%)\n", $1,
                100 * (t - d[5] - d[6]) / t, 100 * (d[2] + d[3]) / t, 100 * d[4] / t, 100 * d[8] / t }' \
            "$work/$name.cpu0" "$work/$name.cpu1"
        awk -v s="$secs" '{ printf "  %-12s %3.0f%% of a core\n", "generator", 100 * ($1 + $2) / s }' \
            "$work/$name.gen-time"
        for p in "$@"; do
            awk -v a="${before[$p]}" -v b="$(ticks "${p#*=}")" -v hz="$hz" -v s="$secs" -v n="${p%=*}" \
                'BEGIN { printf "  %-12s %3.0f%% of a core\n", n, 100 * (b - a) / hz / s }'
        done
        echo "$hops0 $(hops)" | awk '{ printf "  packets over the search: sent %d, edge -> net %d, net -> hub %d, hub -> net %d, net -> sink %d\n", $7 - $1, $8 + $9 - $2 - $3, $10 - $4, $11 - $5, $12 - $6 }'
    } >"$work/$name.cpu"
}

# ---- (a) the ceiling: AF_XDP reflection --------------------------------------------------------

# ceiling NAME [REFLECT_FLAGS...]: the search with AF_XDP reflectors in place of braid.
ceiling() {
    local name=$1
    shift
    ip -n "$prefix-net" rule add iif e1 lookup 100 pref 100
    ip -n "$prefix-net" route add default via "$HUB_ADDR" dev h0 table 100
    ip -n "$prefix-net" neigh replace "$HUB_ADDR" lladdr "$(mac hub wan0)" dev h0 nud permanent
    ip netns exec "$prefix-edge" "$pktgen" reflect --in lan0 --out wan1 --dst-mac "$(mac net e1)" \
        --duration "$HELPER_SECONDS" "$@" >"$work/reflect-edge-$name.log" 2>&1 &
    helpers+=($!)
    local edge_reflector=$!
    wait_xdp edge lan0 wan1
    ip netns exec "$prefix-hub" "$pktgen" reflect --in wan0 --out wan0 --dst-mac "$(mac net h0)" \
        --duration "$HELPER_SECONDS" "$@" >"$work/reflect-hub-$name.log" 2>&1 &
    helpers+=($!)
    local hub_reflector=$!
    wait_xdp hub wan0
    warm_up "$name"
    measure "$name" "edge=$edge_reflector" "hub=$hub_reflector" "sink=$sink_pid"
    kill -TERM "$edge_reflector" "$hub_reflector"
    wait "$edge_reflector" "$hub_reflector" || true
    ip -n "$prefix-net" rule del iif e1 lookup 100 pref 100
    ip -n "$prefix-net" route flush table 100
    ip -n "$prefix-net" neigh del "$HUB_ADDR" dev h0
}

note "ceiling: AF_XDP reflectors at the edge and the hub, fed by libxdp's default program"
ceiling ceiling
note "ceiling-braid: the same reflectors fed by braid's own XDP program"
ceiling ceiling-braid --braid-program

# ---- (b) braid -----------------------------------------------------------------------------------

note "braid: braidd at the edge and the hub, per-packet, weights 1:2"
"$LAB" start --prefix "$prefix" --braidd "$braidd" >/dev/null
warm_up braid
measure braid "edge=$(cat "$run_dir/edge.pid")" "hub=$(cat "$run_dir/hub.pid")" "sink=$sink_pid"
"$LAB" stop --prefix "$prefix" >/dev/null
# braidd's counters (per link, drops by reason), printed as it stops.
for role in edge hub; do grep -v '^lib' "$run_dir/$role.log" >"$work/braidd-$role.log" || true; done

# ---- (b2) braid fed by libxdp's default program -----------------------------------------------------

note "braid-libxdp: the same braidd, fed by libxdp's default program instead of braid's own"
BRAIDD_FLAGS=--libxdp-program "$LAB" start --prefix "$prefix" --braidd "$braidd" >/dev/null
warm_up braid-libxdp
measure braid-libxdp "edge=$(cat "$run_dir/edge.pid")" "hub=$(cat "$run_dir/hub.pid")" "sink=$sink_pid"
"$LAB" stop --prefix "$prefix" >/dev/null

# ---- (c) the kernel --------------------------------------------------------------------------------

note "kernel: VXLAN per uplink, iptables statistic nth 1:2, fwmark rules, policy routing"
for ns in edge hub; do
    nsx "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
        net.ipv4.conf.default.rp_filter=0
done
e() { ip -n "$prefix-edge" "$@"; }
h() { ip -n "$prefix-hub" "$@"; }
e addr add 198.18.1.1/24 dev lan0
e addr add 198.18.11.2/24 dev wan1
e addr add 198.18.12.2/24 dev wan2
e rule add from 198.18.11.2 lookup 11 pref 11
e rule add from 198.18.12.2 lookup 12 pref 12
e route add default via 198.18.11.1 dev wan1 table 11
e route add default via 198.18.12.1 dev wan2 table 12
h addr add "$HUB_ADDR/28" dev wan0
h route add default via 203.0.113.1 dev wan0
for link in 1 2; do
    e link add "vx$link" type vxlan id "$link" local "198.18.1$link.2" remote "$HUB_ADDR" \
        dstport 4789 dev "wan$link"
    h link add "vx$link" type vxlan id "$link" local "$HUB_ADDR" remote "198.18.1$link.2" \
        dstport 4789 dev wan0
    e addr add "198.19.$link.1/30" dev "vx$link"
    h addr add "198.19.$link.2/30" dev "vx$link"
    e link set "vx$link" up
    h link set "vx$link" up
    e rule add fwmark "$link" lookup "10$link" pref "10$link"
    e route add default via "198.19.$link.2" dev "vx$link" table "10$link"
done
h route add 198.18.1.0/24 via 198.19.1.1 dev vx1
nsx edge iptables -t mangle -A PREROUTING -i lan0 -m statistic --mode nth --every 3 --packet 0 \
    -j MARK --set-mark 1
nsx edge iptables -t mangle -A PREROUTING -i lan0 -m mark --mark 0 -j MARK --set-mark 2
if [ "$nat" -eq 1 ]; then
    nsx hub iptables -t nat -A POSTROUTING -s 198.18.1.0/24 -o wan0 -j MASQUERADE
fi
warm_up kernel
measure kernel "sink=$sink_pid"

# ---- the table -----------------------------------------------------------------------------------

commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
    echo "braid lab bench: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $commit"
    echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
    echo "command: benches/lab.sh $([ "$smoke" -eq 1 ] && echo --smoke) $([ "$nat" -eq 0 ] && echo --no-nat) --sizes $sizes --trial $trial --max-trials $max_trials --precision $precision --flows $flows"
    echo
    "$pktgen" compare --variant "ceiling=$work/ceiling.json" \
        --variant "ceiling-braid=$work/ceiling-braid.json" --variant "braid=$work/braid.json" \
        --variant "braid-libxdp=$work/braid-libxdp.json" --variant "kernel=$work/kernel.json" \
        --subject braid --against braid-libxdp,kernel,ceiling,ceiling-braid
    echo
    echo "CPU while searching (2 cores: the generator, the sink, the two ends and the kernel share them):"
    cat "$work/ceiling.cpu" "$work/ceiling-braid.cpu" "$work/braid.cpu" "$work/braid-libxdp.cpu" "$work/kernel.cpu"
    echo "braidd's own drop counters (all trials):"
    grep -h "dropped" "$work/braidd-edge.log" "$work/braidd-hub.log" | sed 's/^/  /' || echo "  none"
} | tee "$work/table.txt"
