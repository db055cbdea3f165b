// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/* The fentry backend: BPF trampolines on security_socket_connect() and, for
 * Fast Open, security_socket_sendmsg(). */
#include "security_socket_connect.bpf.h"

SEC("fentry/security_socket_connect")
int BPF_PROG(handle_fentry_security_socket_connect, struct socket *sock, struct sockaddr *address,
	     int addrlen)
{
	emit_kernel_sockaddr(CS_HOOK_FENTRY, sock, address, addrlen);
	return 0;
}

/* Fast Open: a send that connects (security_socket_connect.bpf.h). */
SEC("fentry/security_socket_sendmsg")
int BPF_PROG(handle_fentry_security_socket_sendmsg, struct socket *sock, struct msghdr *msg, int size)
{
	emit_fastopen(CS_HOOK_FENTRY, sock, msg, true);
	return 0;
}

/* The LSMs' verdict on the connect, for its outcome. */
SEC("fexit/security_socket_connect")
int BPF_PROG(handle_fexit_security_socket_connect, struct socket *sock, struct sockaddr *address, int addrlen,
	     int ret)
{
	track_lsm_verdict(ret);
	return 0;
}
