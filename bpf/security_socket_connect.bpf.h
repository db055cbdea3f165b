/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * What the three backends on security_socket_connect() share (lsm, fentry,
 * kprobe): the hook's arguments are the same for all three, and so is the
 * record they make of them.
 */
#ifndef CONNSCOPE_SECURITY_SOCKET_CONNECT_BPF_H
#define CONNSCOPE_SECURITY_SOCKET_CONNECT_BPF_H

#include "connect.bpf.h"
#include "filters.bpf.h"

/*
 * Emits a record for a sockaddr in kernel memory. The kernel always holds it
 * in a whole sockaddr_storage (__sys_connect and io_uring alike), so all 128
 * bytes are read; addrlen says which count.
 */
static __always_inline void emit_kernel_sockaddr(__u16 hook, struct socket *sock,
						 struct sockaddr *address, int addrlen)
{
	struct cs_connect_record *rec;

	if (!sockaddr_wanted(address, addrlen, false))
		return;
	rec = connect_begin(hook, BPF_CORE_READ(sock, type) & SOCK_TYPE_MASK, task_btf_usable());
	if (!rec)
		return;
	rec->sockfd = syscall_connect_fd(task_btf_usable());
	rec->addrlen = addrlen < 0 ? 0 : addrlen;
	if (bpf_probe_read_kernel(rec->addr, sizeof(rec->addr), address)) {
		__builtin_memset(rec->addr, 0, sizeof(rec->addr));
		rec->flags |= CS_CONNECT_ADDR_FAULT;
	}
	connect_submit(rec);
}

#endif
