// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/* The kprobe backend: a kprobe on security_socket_connect(), as Tracee does. */
#include "security_socket_connect.bpf.h"

SEC("kprobe/security_socket_connect")
int BPF_KPROBE(handle_kprobe_security_socket_connect, struct socket *sock, struct sockaddr *address,
	       int addrlen)
{
	emit_kernel_sockaddr(CS_HOOK_KPROBE, sock, address, addrlen);
	return 0;
}
