#!/usr/bin/env bash
# deploy/pktgen/pktgen.sh: drive Linux's own packet generator (the pktgen module, /proc/net/pktgen)
# on a machine whose kernel has it: UDP frames from DEV to DST_IP/DST_MAC, one kernel thread per
# queue, each from its own UDP source port so that `braid-pktgen sink` counts each thread as a
# stream (it reads pktgen's sequence numbers and timestamps). Bounded by a count and a time limit.
set -euo pipefail

readonly PG=/proc/net/pktgen

usage() {
    cat <<'EOF2'
usage: pktgen.sh -i DEV -d DST_IP -m DST_MAC [options]      (root)

  -i DEV       interface to send on
  -d DST_IP    IPv4 destination
  -m DST_MAC   Ethernet destination (the next hop's MAC)
  -s SIZE      frame size, FCS included, 64-1518 (default 64)
  -t THREADS   kernel threads, one per TX queue and CPU 0..THREADS-1 (default 1)
  -n COUNT     frames per thread (default 1000000; 0 is refused: every run is bounded)
  -r PPS       total rate in packets per second (default: as fast as possible)
  -p PORT      UDP source port of thread 0; thread t uses PORT+t (default 9000)
  -q PORT      UDP destination port (default 9)
  -S SRC_IP    IPv4 source (default: DEV's first address)
  -T SECS      stop after this many seconds in any case (default 60)
  -N           dry run: print what would be written to /proc/net/pktgen, touch nothing
EOF2
}

die() {
    echo "pktgen.sh: $*" >&2
    exit 1
}

dev='' dst='' dst_mac='' src='' pps=''
size=64 threads=1 count=1000000 sport=9000 dport=9 limit=60 dry=0
while getopts "i:d:m:s:t:n:r:p:q:S:T:Nh" opt; do
    case "$opt" in
    i) dev=$OPTARG ;;
    d) dst=$OPTARG ;;
    m) dst_mac=$OPTARG ;;
    s) size=$OPTARG ;;
    t) threads=$OPTARG ;;
    n) count=$OPTARG ;;
    r) pps=$OPTARG ;;
    p) sport=$OPTARG ;;
    q) dport=$OPTARG ;;
    S) src=$OPTARG ;;
    T) limit=$OPTARG ;;
    N) dry=1 ;;
    h)
        usage
        exit 0
        ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
done
if [ -z "$dev" ] || [ -z "$dst" ] || [ -z "$dst_mac" ]; then
    usage >&2
    exit 2
fi
if ! [[ $size =~ ^[0-9]+$ ]] || [ "$size" -lt 64 ] || [ "$size" -gt 1518 ]; then
    die "-s: 64-1518"
fi
[[ $threads =~ ^[1-9][0-9]*$ ]] || die "-t: a number of threads"
[[ $count =~ ^[1-9][0-9]*$ ]] || die "-n: a positive count (runs are bounded)"
[[ $limit =~ ^[1-9][0-9]*$ ]] || die "-T: seconds"
[ -z "$pps" ] || [[ $pps =~ ^[1-9][0-9]*$ ]] || die "-r: packets per second"
[[ $dst_mac =~ ^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$ ]] || die "-m: a MAC like 02:00:00:00:00:01"
[ $((sport + threads - 1)) -le 65535 ] || die "-p: source ports run past 65535"

# One write to a pktgen control file; pktgen answers in the file's Result line.
pg() {
    local file=$1 cmd=$2
    if [ "$dry" -eq 1 ]; then
        echo "$file <- $cmd"
        return 0
    fi
    echo "$cmd" >"$file" || die "$file: writing \"$cmd\" failed"
    if [ "$file" != "$PG/pgctrl" ] && ! grep -q "Result: OK" "$file"; then
        die "$file: \"$cmd\": $(grep Result: "$file")"
    fi
}

if [ "$dry" -eq 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "needs root"
    [ -d "$PG" ] || modprobe pktgen 2>/dev/null || true
    [ -d "$PG" ] || die "this kernel has no pktgen module (use braid-pktgen gen instead)"
    [ -e "/sys/class/net/$dev" ] || die "no interface $dev"
    if [ -z "$src" ]; then
        src=$(ip -4 -o addr show dev "$dev" | awk '{split($4, a, "/"); print a[1]; exit}')
        [ -n "$src" ] || die "$dev has no IPv4 address: give -S"
    fi
fi
src=${src:-198.18.0.1}

# pktgen's pkt_size is the frame without its FCS.
frame=$((size - 4))
for ((t = 0; t < threads; t++)); do
    pg "$PG/kpktgend_$t" rem_device_all
    pg "$PG/kpktgend_$t" "add_device $dev@$t"
    f=$PG/$dev@$t
    pg "$f" "count $count"
    # A new buffer for every frame, so each carries its own sequence number and timestamp.
    pg "$f" "clone_skb 0"
    pg "$f" "pkt_size $frame"
    pg "$f" "dst $dst"
    pg "$f" "src_min $src"
    pg "$f" "src_max $src"
    pg "$f" "dst_mac $dst_mac"
    pg "$f" "udp_src_min $((sport + t))"
    pg "$f" "udp_src_max $((sport + t))"
    pg "$f" "udp_dst_min $dport"
    pg "$f" "udp_dst_max $dport"
    pg "$f" "queue_map_min $t"
    pg "$f" "queue_map_max $t"
    if [ -n "$pps" ]; then
        pg "$f" "ratep $(((pps + threads - 1) / threads))"
    fi
done

if [ "$dry" -eq 1 ]; then
    echo "$PG/pgctrl <- start   (stopped after $limit s)"
    exit 0
fi

stop() { echo stop >"$PG/pgctrl" 2>/dev/null || true; }
trap stop EXIT INT TERM
# `start` returns when every thread has sent its count; the watchdog stops it after the limit.
(sleep "$limit" && stop) &
watchdog=$!
echo start >"$PG/pgctrl" || true
kill "$watchdog" 2>/dev/null || true
for ((t = 0; t < threads; t++)); do
    echo "== $dev@$t"
    grep -A2 "^Result:" "$PG/$dev@$t" || cat "$PG/$dev@$t"
done
