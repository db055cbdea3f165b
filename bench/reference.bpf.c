// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Bench-only reference programs, never part of the library.
 *
 * handle_noop_connect4: the floor. Any cgroup/connect4 program costs at least
 * this much (the hook runs, the program is called, the connect is allowed).
 *
 * handle_wakeup_connect4: what a conventional libbpf tool does. It builds the
 * same record as the library's cgroup backend (the shared connect_begin()),
 * but submits it with flags 0, i.e. the kernel wakes the consumer whenever it
 * has caught up: in practice once per event at ordinary connect rates.
 *
 * handle_noop_ingress, handle_noop_sendmsg4: the floors of the per-packet
 * hooks the DNS capture uses (traffic_tax.cpp). Every packet a local socket
 * receives runs cgroup_skb/ingress; every UDP send with an address runs
 * cgroup/sendmsg4.
 */
#include "connect.bpf.h"

SEC("cgroup/connect4")
int handle_noop_connect4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/connect4")
int handle_wakeup_connect4(struct bpf_sock_addr *ctx)
{
	struct cs_connect_record *rec = connect_begin(CS_HOOK_CGROUP, ctx->type & SOCK_TYPE_MASK, task_btf_usable());
	struct sockaddr_in *sin;

	if (!rec)
		return 1;
	rec->sockfd = syscall_connect_fd(task_btf_usable());
	__builtin_memset(rec->addr, 0, sizeof(rec->addr));
	sin = (struct sockaddr_in *)rec->addr;
	sin->sin_family = AF_INET;
	sin->sin_port = ctx->user_port;
	sin->sin_addr.s_addr = ctx->user_ip4;
	rec->addrlen = sizeof(*sin);
	bpf_ringbuf_submit(rec, 0);
	return 1;
}

/*
 * Breakdown of the cgroup backend's cost (profiled, not timed): a record
 * with only its header, then one with the process context as well, both
 * submitted without a wakeup as the library does.
 */
SEC("cgroup/connect4")
int handle_ring_only_connect4(struct bpf_sock_addr *ctx)
{
	struct cs_connect_record *rec = bpf_ringbuf_reserve(&events_rb, sizeof(*rec), 0);

	if (!rec)
		return 1;
	rec->hdr.type = CS_REC_CONNECT;
	rec->hdr.size = sizeof(*rec);
	rec->hdr.boot_ns = bpf_ktime_get_boot_ns();
	bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
	return 1;
}

SEC("cgroup/connect4")
int handle_process_connect4(struct bpf_sock_addr *ctx)
{
	struct cs_connect_record *rec = connect_begin(CS_HOOK_CGROUP, ctx->type & SOCK_TYPE_MASK, task_btf_usable());

	if (rec)
		bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
	return 1;
}

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
