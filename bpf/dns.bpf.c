// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * DNS capture: cgroup_skb/ingress on the cgroup v2 root sees every packet a
 * local socket receives. Packets to sockets that dns_mark.bpf.c marked (they
 * sent to a DNS port) and that come from a configured port (UDP and TCP, IPv4
 * and IPv6) are copied, bounded, into the same ring as the connect records,
 * so an answer is always decoded before a connect made after it.
 *
 * The current task here is whoever the softirq interrupted, so the namespace
 * comes from the mark and no pid is recorded.
 */
#include "dns.bpf.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IP_OFFSET 0x1FFF

struct dns_scratch {
	struct cs_dns_record rec;
	__u8 payload[CS_DNS_PAYLOAD_MAX];
};

/* A record is built here, then copied into the ring with its real length. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_scratch);
} dns_scratch_map SEC(".maps");

SEC("cgroup_skb/ingress")
int handle_dns_ingress(struct __sk_buff *skb)
{
	__u32 zero = 0, l4_off, payload_off, payload_len, cap, seq = 0, net_ns;
	struct dns_owner owner;
	__u16 sport, dport, flags = 0;
	struct bpf_sock *sk = skb->sk;
	struct dns_mark *mark;
	struct ipv6hdr ip6;
	struct iphdr ip;
	struct dns_scratch *s;
	__u8 proto;

	/* Every packet the host receives comes here: all but those to marked
	 * sockets leave at once. The kernel runs ingress only for a full
	 * socket and puts it in skb->sk; the test is for the verifier. */
	if (!sk)
		return 1;
	mark = bpf_sk_storage_get(&dns_marks, sk, 0, 0);
	if (!mark)
		return 1;
	net_ns = mark->net_ns;
	owner = mark->owner;

	/* Then the source port, before the scratch record is touched. */
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return 1;
		/* Only a whole datagram or the first fragment carries the header. */
		if (bpf_ntohs(ip.frag_off) & IP_OFFSET)
			return 1;
		proto = ip.protocol;
		l4_off = ip.ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return 1;
		/* Extension headers are not walked: DNS answers do not carry them. */
		proto = ip6.nexthdr;
		l4_off = sizeof(ip6);
		flags |= CS_DNS_IPV6;
	} else {
		return 1;
	}

	if (proto == IPPROTO_UDP) {
		struct udphdr udp;

		if (bpf_skb_load_bytes(skb, l4_off, &udp, sizeof(udp)))
			return 1;
		sport = bpf_ntohs(udp.source);
		if (!is_dns_port(sport))
			return 1;
		dport = bpf_ntohs(udp.dest);
		payload_off = l4_off + sizeof(udp);
		payload_len = bpf_ntohs(udp.len);
		payload_len = payload_len > sizeof(udp) ? payload_len - sizeof(udp) : 0;
	} else if (proto == IPPROTO_TCP) {
		struct tcphdr tcp;

		if (bpf_skb_load_bytes(skb, l4_off, &tcp, sizeof(tcp)))
			return 1;
		sport = bpf_ntohs(tcp.source);
		if (!is_dns_port(sport))
			return 1;
		dport = bpf_ntohs(tcp.dest);
		flags |= CS_DNS_TCP;
		if (tcp.fin || tcp.rst)
			flags |= CS_DNS_TCP_FIN;
		seq = bpf_ntohl(tcp.seq);
		payload_off = l4_off + tcp.doff * 4;
		payload_len = skb->len > payload_off ? skb->len - payload_off : 0;
		/* A bare ACK carries nothing; a FIN still ends the flow's state. */
		if (!payload_len && !(flags & CS_DNS_TCP_FIN))
			return 1;
	} else {
		return 1;
	}

	s = bpf_map_lookup_elem(&dns_scratch_map, &zero);
	if (!s)
		return 1;
	__builtin_memset(&s->rec, 0, sizeof(s->rec));
	if (flags & CS_DNS_IPV6) {
		__builtin_memcpy(s->rec.saddr, &ip6.saddr, 16);
		__builtin_memcpy(s->rec.daddr, &ip6.daddr, 16);
	} else {
		__builtin_memcpy(s->rec.saddr, &ip.saddr, 4);
		__builtin_memcpy(s->rec.daddr, &ip.daddr, 4);
	}
	s->rec.sport = sport;
	s->rec.dport = dport;
	s->rec.tcp_seq = seq;

	cap = payload_len < dns_payload_max ? payload_len : dns_payload_max;
	if (cap < payload_len)
		flags |= CS_DNS_TRUNCATED;
	if (cap) {
		/* The mask form lets the verifier bound cap to the scratch buffer. */
		cap = ((cap - 1) & (CS_DNS_PAYLOAD_MAX - 1)) + 1;
		if (bpf_skb_load_bytes(skb, payload_off, s->payload, cap))
			return 1;
	}

	/* Connect records win: past the limit the ring's rest is theirs, and a
	 * DNS flood loses its own records (counted) instead of theirs. */
	if (dns_ring_limit &&
	    bpf_ringbuf_query(&events_rb, BPF_RB_AVAIL_DATA) + sizeof(s->rec) + cap > dns_ring_limit) {
		count_lost(CS_LOST_DNS_RESERVE);
		return 1;
	}

	s->rec.hdr.type = CS_REC_DNS;
	s->rec.hdr.size = sizeof(s->rec) + cap;
	s->rec.hdr.boot_ns = bpf_ktime_get_boot_ns();
	s->rec.net_ns = net_ns;
	s->rec.owner_uid = owner.owner_uid;
	s->rec.owner_ns = owner.owner_ns;
	s->rec.flags = flags;
	s->rec.captured = cap;
	s->rec.orig_len = payload_len;
	if (bpf_ringbuf_output(&events_rb, s, sizeof(s->rec) + cap, submit_flags()))
		count_lost(CS_REC_DNS);
	return 1;
}
