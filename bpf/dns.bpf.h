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

struct dns_mark {
	__u32 net_ns; /* inode of the network namespace answers are keyed by */
};

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
