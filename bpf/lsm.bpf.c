// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The lsm backend: BPF LSM on socket_connect and, for Fast Open, on
 * socket_sendmsg; the kernel's copy of the address.
 */
#include "security_socket_connect.bpf.h"

SEC("lsm/socket_connect")
int BPF_PROG(handle_lsm_socket_connect, struct socket *sock, struct sockaddr *address, int addrlen,
	     int ret)
{
	emit_kernel_sockaddr(CS_HOOK_LSM, sock, address, addrlen);
	/* Observe only: pass on the verdict of the LSMs before us. */
	return ret;
}

/* Fast Open: a send that connects (security_socket_connect.bpf.h). */
SEC("lsm/socket_sendmsg")
int BPF_PROG(handle_lsm_socket_sendmsg, struct socket *sock, struct msghdr *msg, int size, int ret)
{
	emit_fastopen(CS_HOOK_LSM, sock, msg, true);
	return ret;
}
