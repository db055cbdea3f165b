/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * What the programs of the DNS object share: the settings and the marks.
 *
 * A mark is socket-local storage on a socket that sent to a DNS port. It is
 * written where the network namespace can be read (the querying process, in
 * the cgroup connect/sendmsg hooks; the socket itself, in the iterator) and
 * read by cgroup_skb/ingress, where the current task is whoever the softirq
 * interrupted. A packet to an unmarked socket leaves ingress after one
 * lookup, so other traffic pays only for that.
 */
#ifndef CONNSCOPE_DNS_BPF_H
#define CONNSCOPE_DNS_BPF_H

#include "ring.bpf.h"

const volatile __u16 dns_ports[CS_DNS_PORTS_MAX] __weak; /* host order */
const volatile __u32 dns_port_count __weak;
const volatile __u32 dns_payload_max __weak = 1500;
/* Ring fill, in bytes, past which a DNS record is dropped (and counted in
 * lost_counts[CS_LOST_DNS_RESERVE]) rather than written: the rest of the
 * ring is kept for connect records. 0 = no limit. */
const volatile __u64 dns_ring_limit __weak = 0;

/*
 * Who pays for a namespace's names in the correlator (lib/records/dns_budget):
 * the user namespace owning the network namespace, walked up to the one just
 * below the initial user namespace, and that one's owner. Only a process of
 * the initial user namespace can make such a namespace, and its owner is the
 * creator's own host uid, so an unprivileged user cannot mint either cheaply;
 * namespaces nested below it all report the same two values.
 */
struct dns_owner {
	__u32 owner_uid; /* kuid of the top user namespace's creator; 0 when owner_ns is 0 */
	__u32 owner_ns;  /* inode of that user namespace; 0: the network namespace belongs to the initial one */
};

struct dns_mark {
	__u32 net_ns; /* inode of the network namespace answers are keyed by */
	struct dns_owner owner;
};

/* Deeper than the kernel allows (32 levels below the initial namespace). */
#define DNS_USERNS_MAX_LEVEL 33

static __always_inline void read_owner(struct net *net, struct dns_owner *out)
{
	struct user_namespace *uns = BPF_CORE_READ(net, user_ns);
	int level = BPF_CORE_READ(uns, level);

	out->owner_uid = 0;
	out->owner_ns = 0;
	if (level <= 0)
		return;
	for (int i = 1; i < DNS_USERNS_MAX_LEVEL; i++) {
		if (i >= level)
			break;
		uns = BPF_CORE_READ(uns, parent);
	}
	out->owner_uid = BPF_CORE_READ(uns, owner.val);
	out->owner_ns = BPF_CORE_READ(uns, ns.inum);
}

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct dns_mark);
} dns_marks SEC(".maps") __weak;

/* The settings are read-only after load, so the verifier drops the unused
 * iterations of this loop. */
static __always_inline int is_dns_port(__u16 port)
{
#pragma unroll
	for (int i = 0; i < CS_DNS_PORTS_MAX; i++) {
		if (i >= dns_port_count)
			return 0;
		if (dns_ports[i] == port)
			return 1;
	}
	return 0;
}

#endif
