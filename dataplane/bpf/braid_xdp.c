// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * braid's XDP program: which received frames go to braid's AF_XDP sockets and which to the
 * kernel (docs/ARCHITECTURE.md, "braid's XDP program"). braidd loads it on every interface it
 * is given, fills its maps, and puts each worker's socket in braid_xsks at its queue number.
 *
 * An `owned` interface sends every frame to braid, as libxdp's default program does. A
 * `shared` interface sends braid only what braid handles and passes the rest to the kernel:
 *   - IPv4 unicast to an address that is not the host's: frames to be routed;
 *   - anything to an address braid holds and the kernel does not (ADDR_BRAID);
 *   - on the host's addresses, what braid claims: the tunnel's UDP ports, the NAT's ports
 *     and ICMP identifiers, and ICMP errors about packets sent from them;
 *   - ARP for braid's own addresses, and replies to braid's requests, which it sends with
 *     sender address 0.0.0.0 so that the kernel's replies and braid's are told apart.
 * Link-layer broadcast and multicast, IPv4 broadcast and multicast, and every other
 * EtherType go to the kernel. If no socket is bound on the frame's queue, the kernel gets it.
 *
 * Self-contained: no kernel or libbpf header, so it builds with clang alone
 * (`clang -O2 -g -target bpf`, dataplane/build.rs). The layouts below are the kernel's ABI.
 */

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define INLINE static inline __attribute__((always_inline))

/* Kernel ABI: include/uapi/linux/bpf.h. */
struct xdp_md {
	__u32 data;
	__u32 data_end;
	__u32 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
};
#define XDP_PASS 2
#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_XSKMAP 17
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_redirect_map)(void *map, __u64 key, __u64 flags) = (void *)51;

/* Keep in step with dataplane/src/io/prog.rs. */
#define MAX_QUEUES 64
#define MAX_ADDRS 256
#define MAX_CLAIMS 16
#define ADDR_HOST 1      /* the kernel's: passed, except what braid claims on it */
#define ADDR_BROADCAST 2 /* a directed broadcast of a kernel prefix: passed */
#define ADDR_BRAID 3     /* braid's and not the kernel's: every frame to braid */
#define CLAIM_ICMP 1
#define CLAIM_TCP 2
#define CLAIM_UDP 4

/* Ports (and ICMP identifiers) port_min..=port_max of the protocols in `protos` on `addr`. */
struct claim {
	__u32 addr; /* network order */
	__u16 port_min;
	__u16 port_max;
	__u32 protos;
};

struct params {
	__u32 owned;
	__u32 claims;
	struct claim claim[MAX_CLAIMS];
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} braid_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ADDRS);
	__type(key, __u32);
	__type(value, __u32);
} braid_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct params);
} braid_params SEC(".maps");

struct eth {
	__u8 dst[6];
	__u8 src[6];
	__u16 type;
};

struct ipv4 {
	__u8 version_ihl;
	__u8 tos;
	__u16 len;
	__u16 id;
	__u16 frag;
	__u8 ttl;
	__u8 proto;
	__u16 csum;
	__u32 saddr;
	__u32 daddr;
};

struct arp {
	__u16 htype;
	__u16 ptype;
	__u8 hlen;
	__u8 plen;
	__u16 op;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
};

#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ARPOP_REPLY 2
#define PROTO_ICMP 1
#define PROTO_TCP 6
#define PROTO_UDP 17
#define IP_OFFSET 0x1fff

INLINE __u16 be16(__u16 x) { return __builtin_bswap16(x); }

INLINE int to_braid(struct xdp_md *ctx)
{
	return bpf_redirect_map(&braid_xsks, ctx->rx_queue_index, XDP_PASS);
}

INLINE __u32 proto_bit(__u8 proto)
{
	if (proto == PROTO_TCP)
		return CLAIM_TCP;
	if (proto == PROTO_UDP)
		return CLAIM_UDP;
	if (proto == PROTO_ICMP)
		return CLAIM_ICMP;
	return 0;
}

/* Whether braid claims `port` (host order) of protocol `proto` on `addr`. */
INLINE int claimed(const struct params *p, __u32 addr, __u8 proto, __u16 port)
{
	__u32 bit = proto_bit(proto);
	if (!bit)
		return 0;
#pragma unroll
	for (int i = 0; i < MAX_CLAIMS; i++) {
		const struct claim *c = &p->claim[i];
		if (i < p->claims && c->addr == addr && (c->protos & bit) && port >= c->port_min &&
		    port <= c->port_max)
			return 1;
	}
	return 0;
}

/* The IPv4 header at `ip`, if whole and at least 20 bytes long; its length in `hlen`. */
INLINE int ipv4_ok(const struct ipv4 *ip, const void *end, __u32 *hlen)
{
	if ((const void *)(ip + 1) > end)
		return 0;
	*hlen = (ip->version_ihl & 0x0f) * 4;
	return (ip->version_ihl >> 4) == 4 && *hlen >= sizeof(*ip);
}

/* An ICMP error about a packet braid sent from a claimed port: the quoted header's source. */
INLINE int claimed_error(const struct params *p, const __u8 *icmp, const void *end)
{
	const struct ipv4 *inner = (const void *)(icmp + 8);
	__u32 hlen;
	if (!ipv4_ok(inner, end, &hlen) || hlen > 60)
		return 0;
	const __u8 *l4 = (const __u8 *)inner + hlen;
	if ((const void *)(l4 + 8) > end)
		return 0;
	if (inner->proto == PROTO_ICMP)
		return l4[0] == 8 && claimed(p, inner->saddr, PROTO_ICMP, (l4[4] << 8) | l4[5]);
	return claimed(p, inner->saddr, inner->proto, (l4[0] << 8) | l4[1]);
}

/* Whether braid claims this packet to one of the host's addresses. */
INLINE int claimed_packet(const struct params *p, const struct ipv4 *ip, __u32 hlen,
			  const void *end)
{
	if (ip->frag & be16(IP_OFFSET))
		return 0; /* a later fragment has no ports: the kernel's */
	const __u8 *l4 = (const __u8 *)ip + hlen;
	if ((const void *)(l4 + 8) > end)
		return 0;
	if (ip->proto == PROTO_TCP || ip->proto == PROTO_UDP)
		return claimed(p, ip->daddr, ip->proto, (l4[2] << 8) | l4[3]);
	if (ip->proto != PROTO_ICMP)
		return 0;
	if (l4[0] == 0) /* echo reply: the identifier */
		return claimed(p, ip->daddr, PROTO_ICMP, (l4[4] << 8) | l4[5]);
	if (l4[0] == 3 || l4[0] == 11 || l4[0] == 12)
		return claimed_error(p, l4, end);
	return 0;
}

SEC("xdp")
int braid_xdp(struct xdp_md *ctx)
{
	const void *data = (const void *)(long)ctx->data;
	const void *end = (const void *)(long)ctx->data_end;
	__u32 zero = 0;
	const struct params *p = bpf_map_lookup_elem(&braid_params, &zero);
	if (!p || p->owned)
		return to_braid(ctx);

	const struct eth *eth = data;
	if ((const void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->type == be16(ETH_P_ARP)) {
		const struct arp *a = (const void *)(eth + 1);
		if ((const void *)(a + 1) > end)
			return XDP_PASS;
		__u32 tpa;
		__builtin_memcpy(&tpa, a->tpa, sizeof(tpa));
		if (a->op == be16(ARPOP_REPLY) && tpa == 0)
			return to_braid(ctx);
		const __u32 *class = bpf_map_lookup_elem(&braid_addrs, &tpa);
		if (class && *class == ADDR_BRAID)
			return to_braid(ctx);
		return XDP_PASS;
	}
	if (eth->type != be16(ETH_P_IP) || (eth->dst[0] & 1))
		return XDP_PASS;

	const struct ipv4 *ip = (const void *)(eth + 1);
	__u32 hlen;
	if (!ipv4_ok(ip, end, &hlen) || hlen > 60)
		return XDP_PASS;
	__u32 daddr = ip->daddr;
	__u8 first = ((const __u8 *)&ip->daddr)[0];
	if (daddr == 0xffffffff || (first & 0xf0) == 0xe0)
		return XDP_PASS;
	const __u32 *class = bpf_map_lookup_elem(&braid_addrs, &daddr);
	if (!class || *class == ADDR_BRAID)
		return to_braid(ctx);
	if (*class == ADDR_HOST && claimed_packet(p, ip, hlen, end))
		return to_braid(ctx);
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
