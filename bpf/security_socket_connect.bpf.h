/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * What the three backends on security_socket_connect() share (lsm, fentry,
 * kprobe): the hook's arguments are the same for all three, and so is the
 * record they make of them. They also share the Fast Open path: a send with
 * MSG_FASTOPEN connects (tcp_sendmsg_fastopen -> __inet_stream_connect)
 * without security_socket_connect, but passes security_socket_sendmsg with
 * the kernel's copy of the address in msg_name.
 */
#ifndef CONNSCOPE_SECURITY_SOCKET_CONNECT_BPF_H
#define CONNSCOPE_SECURITY_SOCKET_CONNECT_BPF_H

#include "connect.bpf.h"
#include "filters.bpf.h"

/*
 * Emits a record for a sockaddr in kernel memory. The kernel always holds it
 * in a whole sockaddr_storage (__sys_connect, sendto, sendmsg and io_uring
 * alike), so all 128 bytes are read; addrlen says which count.
 */
static __always_inline void emit_kernel_sockaddr(__u16 hook, struct socket *sock,
						 struct sockaddr *address, int addrlen)
{
	struct cs_connect_record *rec;
	struct connect_origin origin;

	if (!sockaddr_wanted(address, addrlen, false))
		return;
	origin = connect_origin(task_btf_usable());
	/*
	 * A TCP IORING_OP_CONNECT that could not finish at once is retried by
	 * the kernel (an io-wq worker calls connect again, up to 6.1 at least;
	 * or io_uring's task work, which may run on the way back to user space
	 * from an interrupt, whose registers name no system call: via unknown,
	 * seen on arm64 6.1) on the socket it left connecting: the same
	 * request, not a new connect. Only connect(2) and io_uring reach this
	 * hook, so an unknown origin is io_uring's.
	 */
	if ((origin.via == CS_VIA_IO_URING || origin.via == CS_VIA_UNKNOWN) && BPF_CORE_READ(sock, state) == SS_CONNECTING)
		return;
	rec = connect_begin(hook, BPF_CORE_READ(sock, type) & SOCK_TYPE_MASK, task_btf_usable());
	if (!rec)
		return;
	rec->sockfd = origin.fd;
	rec->via = origin.via;
	rec->addrlen = addrlen < 0 ? 0 : addrlen;
	if (bpf_probe_read_kernel(rec->addr, sizeof(rec->addr), address)) {
		__builtin_memset(rec->addr, 0, sizeof(rec->addr));
		rec->flags |= CS_CONNECT_ADDR_FAULT;
	}
	connect_submit(rec);
}

/*
 * Every send on the host passes security_socket_sendmsg: the flag is tested
 * first, and only a send that connects (fastopen_socket_connects()) is
 * reported. A send to an address without MSG_FASTOPEN never connects a TCP
 * socket. btf_args as for fastopen_socket_connects().
 */
static __always_inline void emit_fastopen(__u16 hook, struct socket *sock, struct msghdr *msg, bool btf_args)
{
	if (!((btf_args ? msg->msg_flags : BPF_CORE_READ(msg, msg_flags)) & MSG_FASTOPEN) ||
	    !(btf_args ? msg->msg_name : BPF_CORE_READ(msg, msg_name)) || !fastopen_socket_connects(sock, btf_args))
		return;
	emit_kernel_sockaddr(hook, sock, BPF_CORE_READ(msg, msg_name), BPF_CORE_READ(msg, msg_namelen));
}

#endif
