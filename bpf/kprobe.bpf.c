// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/* The kprobe backend: kprobes on security_socket_connect(), as Tracee does,
 * and, for Fast Open, security_socket_sendmsg(). */
#include "security_socket_connect.bpf.h"

SEC("kprobe/security_socket_connect")
int BPF_KPROBE(handle_kprobe_security_socket_connect, struct socket *sock, struct sockaddr *address,
	       int addrlen)
{
	emit_kernel_sockaddr(CS_HOOK_KPROBE, sock, address, addrlen);
	return 0;
}

/* Fast Open: a send that connects (security_socket_connect.bpf.h). */
SEC("kprobe/security_socket_sendmsg")
int BPF_KPROBE(handle_kprobe_security_socket_sendmsg, struct socket *sock, struct msghdr *msg, int size)
{
	emit_fastopen(CS_HOOK_KPROBE, sock, msg, false);
	return 0;
}

/* The LSMs' verdict on the connect, for its outcome. */
SEC("kretprobe/security_socket_connect")
int BPF_KRETPROBE(handle_kretprobe_security_socket_connect, int ret)
{
	track_lsm_verdict(ret);
	return 0;
}
