# benches/common.sh: pieces the lab benches share, sourced by benches/lab.sh, failover.sh and
# bonding.sh. The functions read the caller's $prefix (the lab's namespace prefix) and call its
# die; those that ask braidd read $bin (braidctl's directory) and $run_dir (the lab's run dir).
# shellcheck shell=bash disable=SC2154

readonly HUB_ADDR=203.0.113.2

# Unix time in seconds (bash's clock: no process per reading).
now() { echo "$EPOCHREALTIME"; }

# Waits up to 10 s until every named interface of namespace $1 has an XDP program.
wait_xdp() {
    local ns=$1 dev _ ok
    shift
    for _ in $(seq 100); do
        ok=1
        for dev in "$@"; do
            ip -n "$prefix-$ns" -d link show dev "$dev" | grep -q prog/xdp || ok=0
        done
        [ "$ok" -eq 0 ] || return 0
        sleep 0.1
    done
    die "no XDP program on $ns: $* after 10 s"
}

# braidd $1's (edge or hub) links as JSON.
links() { "$bin/braidctl" --socket "$run_dir/$1.sock" links --json; }

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
    die "braid: links still unprobed after 10 s"
}

# The LAN host's TCP counters (only the benches' senders run there): NAME VALUE lines. Absolute
# values (nstat -a, no history file): callers take differences.
tcp_counters() {
    ip netns exec "$prefix-lan" nstat -asz TcpOutSegs TcpExtTCPTimeouts TcpRetransSegs \
        TcpExtTCPLossProbes TcpExtTCPSackRecovery | awk '!/^#/ { print $1, $2 }'
}

# The kernel doing braid's job between P-edge and P-hub (braid stopped, its NICs free): a VXLAN
# tunnel per uplink, fwmark rules into them (the marks come from kernel_split), the hub
# masquerading the LAN; the hub sends what goes back to the LAN by the same marks (its ACKs take
# both links, as braid's do), and the edge clamps the MSS to the tunnels' MTU.
kernel_recipe_up() {
    local ns link
    for ns in edge hub; do
        ip netns exec "$prefix-$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
            net.ipv4.conf.default.rp_filter=0
    done
    e() { ip -n "$prefix-edge" "$@"; }
    h() { ip -n "$prefix-hub" "$@"; }
    # The emulator takes frames as they are on the wire: the kernel's uplinks must hand it whole
    # frames with their checksums (braid-lab does the same for the kernel ends that send to braid).
    for link in wan1 wan2; do
        ip netns exec "$prefix-edge" ethtool -K "$link" tx off tso off gso off >/dev/null
    done
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
        h rule add fwmark "$link" lookup "10$link" pref "10$link"
        h route add 198.18.1.0/24 via "198.19.$link.1" dev "vx$link" table "10$link"
    done
    h route add 198.18.1.0/24 via 198.19.1.1 dev vx1
    ip netns exec "$prefix-hub" iptables -t nat -A POSTROUTING -s 198.18.1.0/24 -o wan0 -j MASQUERADE
    # Segments that fit the tunnels (VXLAN's MTU is 1450), both ways, as braid clamps them.
    ip netns exec "$prefix-edge" iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN \
        -j TCPMSS --set-mss 1410
}

# The kernel recipe's split: "nth" 1 packet in 3 to isp1 and the rest to isp2 at both ends (the
# edge: what the LAN sends; the hub: what goes back to the LAN), or "isp2" alone.
kernel_split() {
    local ns rule
    for ns in edge hub; do ip netns exec "$prefix-$ns" iptables -t mangle -F PREROUTING; done
    for ns in edge hub; do
        if [ "$ns" = edge ]; then rule=(-i lan0); else rule=(-i wan0 -m conntrack --ctorigsrc 198.18.1.0/24); fi
        if [ "$1" = nth ]; then
            ip netns exec "$prefix-$ns" iptables -t mangle -A PREROUTING "${rule[@]}" \
                -m statistic --mode nth --every 3 --packet 0 -j MARK --set-mark 1
        fi
        ip netns exec "$prefix-$ns" iptables -t mangle -A PREROUTING "${rule[@]}" -m mark --mark 0 \
            -j MARK --set-mark 2
    done
}
