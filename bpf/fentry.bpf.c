// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/* The fentry backend: a BPF trampoline on security_socket_connect(). */
#include "security_socket_connect.bpf.h"

SEC("fentry/security_socket_connect")
int BPF_PROG(handle_fentry_security_socket_connect, struct socket *sock, struct sockaddr *address,
	     int addrlen)
{
	emit_kernel_sockaddr(CS_HOOK_FENTRY, sock, address, addrlen);
	return 0;
}
