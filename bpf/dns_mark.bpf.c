// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Marks the sockets whose answers dns.bpf.c captures (dns.bpf.h says why).
 *
 * cgroup/connect4, connect6 (TCP and connected UDP) and sendmsg4, sendmsg6
 * (unconnected UDP) run in the querying process, so its network namespace is
 * read from the current task; they always allow. iter/tcp and iter/udp mark,
 * once at start, the sockets already connected to a DNS port, with the
 * socket's own namespace. They see only the network namespace of the process
 * that creates them (bpf_iter_init_seq_net), and bpf_sk_storage_get in an
 * iterator needs Linux 5.11, so user space loads them only where the kernel
 * accepts them.
 */
#include "dns.bpf.h"

/* Sockets the iterators marked; read by user space after the walk. */
__u32 dns_premarked = 0;

/* sendmsg4/6 run for every UDP datagram sent with an address: the port
 * comes first, the socket only for a DNS query. */
static __always_inline void mark_querying_socket(struct bpf_sock_addr *ctx)
{
	struct task_struct *task;
	struct dns_mark *mark;
	struct bpf_sock *sk;
	struct net *net;

	/* user_port is in network order in the low 16 bits. */
	if (!is_dns_port(bpf_ntohs((__u16)ctx->user_port)))
		return;
	sk = ctx->sk;
	if (!sk)
		return;
	mark = bpf_sk_storage_get(&dns_marks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!mark)
		return;
	/* Once per DNS query, so the CO-RE reads (a few helper calls, one per
	 * user namespace level for the owner) are cheap enough, and they load
	 * where the BTF task pointer (5.11) does not. */
	task = (struct task_struct *)bpf_get_current_task();
	net = BPF_CORE_READ(task, nsproxy, net_ns);
	mark->net_ns = BPF_CORE_READ(net, ns.inum);
	read_owner(net, &mark->owner);
}

SEC("cgroup/connect4")
int handle_dns_connect4(struct bpf_sock_addr *ctx)
{
	mark_querying_socket(ctx);
	return 1;
}

SEC("cgroup/connect6")
int handle_dns_connect6(struct bpf_sock_addr *ctx)
{
	mark_querying_socket(ctx);
	return 1;
}

SEC("cgroup/sendmsg4")
int handle_dns_sendmsg4(struct bpf_sock_addr *ctx)
{
	mark_querying_socket(ctx);
	return 1;
}

SEC("cgroup/sendmsg6")
int handle_dns_sendmsg6(struct bpf_sock_addr *ctx)
{
	mark_querying_socket(ctx);
	return 1;
}

/* Called for every socket the iterators visit; the kernel keeps a mark
 * only on a full socket (not a request or timewait one). */
static __always_inline void mark_connected_socket(struct sock_common *skc)
{
	struct dns_mark *mark;

	/* Only a connected socket has a remote port; an unconnected UDP one
	 * is marked by sendmsg4/6 on its next query. */
	if (!is_dns_port(bpf_ntohs(skc->skc_dport)))
		return;
	mark = bpf_sk_storage_get(&dns_marks, skc, 0, BPF_SK_STORAGE_GET_F_CREATE);
	/* A mark a hook wrote (they run since before the walk) stays. */
	if (!mark || mark->net_ns)
		return;
	mark->net_ns = skc->skc_net.net->ns.inum;
	read_owner(skc->skc_net.net, &mark->owner);
	dns_premarked++;
}

SEC("iter/tcp")
int handle_dns_iter_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;

	if (skc)
		mark_connected_socket(skc);
	return 0;
}

SEC("iter/udp")
int handle_dns_iter_udp(struct bpf_iter__udp *ctx)
{
	/* sock_common leads udp_sock (inet.sk.__sk_common): a cast, not a
	 * member access the compiler would load ctx->udp_sk again for. */
	struct sock_common *skc = (struct sock_common *)ctx->udp_sk;

	if (skc)
		mark_connected_socket(skc);
	return 0;
}
