// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Bench-only: the floors of the per-packet hooks the DNS capture uses
 * (traffic_tax.cpp). Every packet a local socket receives runs
 * cgroup_skb/ingress; every UDP sendmsg with an address runs cgroup/sendmsg4.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("cgroup_skb/ingress")
int handle_noop_ingress(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup/sendmsg4")
int handle_noop_sendmsg4(struct bpf_sock_addr *ctx)
{
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
