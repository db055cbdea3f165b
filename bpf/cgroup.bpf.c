// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The cgroup backend: cgroup/connect4, connect6 and connect_unix on the
 * cgroup v2 root. They run after the LSM check on the kernel's copy of the
 * address, for connect(2), io_uring and Fast Open sends alike (all reach
 * __inet_stream_connect's pre_connect), and only observe: they always allow
 * the connect (return 1).
 */
#include "connect.bpf.h"
#include "filters.bpf.h"

/*
 * Present from 6.2; weak so the object still loads where it is missing. libbpf
 * 1.1 then leaves a kfunc call to id 0 in the program: 5.10 to 5.12 know no
 * kfuncs and never look at it in dead code, 5.16 and later drop it as dead
 * code, but 5.13 to 5.15 refuse the program ("kernel btf_id 0 is not a
 * function"). So only the flavours for 6.2 and later call it at all.
 */
extern void *bpf_cast_to_kern_ctx(void *) __ksym __weak;

/*
 * The flavours, picked by user space (backend_table.cpp):
 *   handle_connect4              5.15 and later
 *   handle_connect6              6.2 and later (the kfunc resolves)
 *   handle_connect6_no_kfunc     5.15 to 6.1
 *   handle_connect{4,6}_compat   5.10 to 5.14: cgroup programs may not call
 *                                bpf_get_current_task_btf there (tracing ones
 *                                may from 5.11), so task_btf is false
 */
static __always_inline struct cs_connect_record *cgroup_begin(struct bpf_sock_addr *ctx, bool task_btf)
{
	struct cs_connect_record *rec = connect_begin(CS_HOOK_CGROUP, ctx->type & SOCK_TYPE_MASK, task_btf);
	struct connect_origin origin;

	if (!rec)
		return 0;
	/* connect(2), io_uring and Fast Open sends alike: all reach pre_connect. */
	origin = connect_origin(task_btf);
	rec->sockfd = origin.fd;
	rec->via = origin.via;
	/* Gives the socket its cookie now, for the outcome of a UDP connect. */
	if (track_outcomes)
		bpf_get_socket_cookie(ctx);
	return rec;
}

static __always_inline int connect4(struct bpf_sock_addr *ctx, bool task_btf)
{
	struct cs_connect_record *rec;
	struct sockaddr_in *sin;

	if (!connect_wanted(AF_INET, bpf_ntohs((__u16)ctx->user_port), true))
		return 1;
	rec = cgroup_begin(ctx, task_btf);
	if (!rec)
		return 1;
	/* The hook hands us fields, not the sockaddr: rebuild a sockaddr_in. */
	sin = (struct sockaddr_in *)rec->addr;
	if (ctx->user_family != AF_INET) {
		/* An address of another family on an AF_INET socket: the kernel
		 * refuses it (EAFNOSUPPORT); report the family, not a made-up IPv4. */
		sin->sin_family = ctx->user_family;
		rec->addrlen = sizeof(sin->sin_family);
		connect_submit(rec);
		return 1;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = ctx->user_port;
	sin->sin_addr.s_addr = ctx->user_ip4;
	__builtin_memset(sin->__pad, 0, sizeof(sin->__pad));
	rec->addrlen = sizeof(*sin);
	connect_submit(rec);
	return 1;
}

static __always_inline int connect6(struct bpf_sock_addr *ctx, bool task_btf, bool kfunc)
{
	struct cs_connect_record *rec;
	struct sockaddr_in6 *sin6;

	if (!connect_wanted(AF_INET6, bpf_ntohs((__u16)ctx->user_port), true))
		return 1;
	rec = cgroup_begin(ctx, task_btf);
	if (!rec)
		return 1;
	sin6 = (struct sockaddr_in6 *)rec->addr;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = ctx->user_port;
	sin6->sin6_addr.in6_u.u6_addr32[0] = ctx->user_ip6[0];
	sin6->sin6_addr.in6_u.u6_addr32[1] = ctx->user_ip6[1];
	sin6->sin6_addr.in6_u.u6_addr32[2] = ctx->user_ip6[2];
	sin6->sin6_addr.in6_u.u6_addr32[3] = ctx->user_ip6[3];
	/* Flow info and scope id are not ctx fields; the kernel's sockaddr has them. */
	sin6->sin6_flowinfo = 0;
	sin6->sin6_scope_id = 0;
	rec->addrlen = sizeof(*sin6);
	/*
	 * The scope id is only there when the caller passed all 28 bytes; the
	 * kernel's copy says how many it got from Linux 6.7 (uaddrlen), so
	 * before that the scope id is not read at all.
	 */
	if (kfunc && bpf_cast_to_kern_ctx && bpf_core_field_exists(struct bpf_sock_addr_kern, uaddrlen)) {
		struct bpf_sock_addr_kern *kctx = bpf_cast_to_kern_ctx(ctx);
		struct sockaddr_in6 *uaddr = (struct sockaddr_in6 *)BPF_CORE_READ(kctx, uaddr);
		__u32 len = BPF_CORE_READ(kctx, uaddrlen);

		sin6->sin6_flowinfo = BPF_CORE_READ(uaddr, sin6_flowinfo);
		if (len >= sizeof(*sin6))
			sin6->sin6_scope_id = BPF_CORE_READ(uaddr, sin6_scope_id);
		rec->addrlen = len;
	}
	connect_submit(rec);
	return 1;
}

SEC("cgroup/connect4")
int handle_connect4(struct bpf_sock_addr *ctx)
{
	return connect4(ctx, task_btf_usable());
}

SEC("cgroup/connect6")
int handle_connect6(struct bpf_sock_addr *ctx)
{
	return connect6(ctx, task_btf_usable(), true);
}

SEC("cgroup/connect6")
int handle_connect6_no_kfunc(struct bpf_sock_addr *ctx)
{
	return connect6(ctx, task_btf_usable(), false);
}

SEC("cgroup/connect4")
int handle_connect4_compat(struct bpf_sock_addr *ctx)
{
	return connect4(ctx, false);
}

SEC("cgroup/connect6")
int handle_connect6_compat(struct bpf_sock_addr *ctx)
{
	return connect6(ctx, false, false);
}

/*
 * Kernel >= 6.7 (every flavour lists it, optional, to report why UNIX
 * connects are missing). libbpf 1.1 does not know the section name, so this is
 * declared as connect4 and user space sets the expected attach type to
 * BPF_CGROUP_UNIX_CONNECT before load (and leaves it out on older kernels).
 */
SEC("cgroup/connect4")
int handle_connect_unix(struct bpf_sock_addr *ctx)
{
	struct bpf_sock_addr_kern *kctx;
	struct cs_connect_record *rec;
	__u32 len;

	if (!bpf_cast_to_kern_ctx || !connect_wanted(AF_UNIX, 0, false))
		return 1;
	rec = cgroup_begin(ctx, task_btf_usable());
	if (!rec)
		return 1;
	kctx = bpf_cast_to_kern_ctx(ctx);
	len = BPF_CORE_READ(kctx, uaddrlen);
	rec->addrlen = len;
	__builtin_memset(rec->addr, 0, sizeof(rec->addr));
	if (len && bpf_probe_read_kernel(rec->addr, sockaddr_read_size(len), BPF_CORE_READ(kctx, uaddr)))
		rec->flags |= CS_CONNECT_ADDR_FAULT;
	connect_submit(rec);
	return 1;
}
