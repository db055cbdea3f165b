// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The tracepoint backend: the entries of connect and of the sends that can
 * connect (sendto, sendmsg, sendmmsg with MSG_FASTOPEN), and io_uring's
 * submission tracepoint for IORING_OP_CONNECT. It reads the caller's copy of
 * the address, which the caller may change before the kernel copies it, so
 * its records carry CS_CONNECT_TOCTOU.
 */
#include "user_sockaddr.bpf.h"

static __always_inline void on_connect(int fd, const void *uaddr, int addrlen)
{
	emit_user_sockaddr(CS_HOOK_TRACEPOINT, 0, fd, uaddr, addrlen, CS_VIA_CONNECT, fd_socket(fd));
}

/* A send connects only with MSG_FASTOPEN, an address, and a socket that takes it. */
static __always_inline void on_send(int fd, __u64 flags, const void *uaddr, int addrlen)
{
	struct socket *sock;

	if (!(flags & MSG_FASTOPEN) || !uaddr)
		return;
	sock = fd_socket(fd);
	if (!sock || !fastopen_socket_connects(sock, false))
		return;
	emit_user_sockaddr(CS_HOOK_TRACEPOINT, 0, fd, uaddr, addrlen, CS_VIA_FASTOPEN, sock);
}

/* sendmsg's address is behind the caller's msghdr; sendmmsg's first
 * message is the one that connects, and starts with the same header. */
static __always_inline void on_sendmsg(int fd, const struct user_msghdr *umsg, __u64 flags)
{
	struct {
		void *name;
		int namelen;
	} head;

	if (!(flags & MSG_FASTOPEN) || !umsg)
		return;
	if (bpf_core_field_offset(struct user_msghdr, msg_namelen) != sizeof(head.name) ||
	    bpf_probe_read_user(&head, sizeof(head), umsg))
		return;
	on_send(fd, flags, head.name, head.namelen);
}

/* Where tracefs is mounted: each fires for its own system call only. */
SEC("tracepoint/syscalls/sys_enter_connect")
int handle_sys_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	on_connect((int)ctx->args[0], (const void *)ctx->args[1], (int)ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int handle_sys_enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	on_send((int)ctx->args[0], ctx->args[3], (const void *)ctx->args[4], (int)ctx->args[5]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int handle_sys_enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	on_sendmsg((int)ctx->args[0], (const struct user_msghdr *)ctx->args[1], ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int handle_sys_enter_sendmmsg(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[2] > 0)
		on_sendmsg((int)ctx->args[0], (const struct user_msghdr *)ctx->args[1], ctx->args[3]);
	return 0;
}

/*
 * Without tracefs: every syscall's entry, filtered on the syscall number.
 * A 32-bit task's numbers mean other calls (x86's 42 is its pipe), and the
 * syscall tracepoints above never fire for them either, so they are left out.
 */
SEC("tp_btf/sys_enter")
int BPF_PROG(handle_tp_btf_sys_enter, struct pt_regs *regs, long id)
{
	int fd;

	if (id != NR_CONNECT && id != NR_SENDTO && id != NR_SENDMSG && id != NR_SENDMMSG)
		return 0;
	if (in_compat_syscall((struct task_struct *)bpf_get_current_task(), false))
		return 0;
	fd = (int)SYS_ENTER_ARG(regs, 0);
	switch (id) {
	case NR_CONNECT:
		on_connect(fd, (const void *)SYS_ENTER_ARG(regs, 1), (int)SYS_ENTER_ARG(regs, 2));
		break;
	case NR_SENDTO:
		on_send(fd, SYS_ENTER_ARG(regs, 3), (const void *)SYS_ENTER_ARG(regs, 4), (int)SYS_ENTER_ARG(regs, 5));
		break;
	case NR_SENDMSG:
		on_sendmsg(fd, (const struct user_msghdr *)SYS_ENTER_ARG(regs, 1), SYS_ENTER_ARG(regs, 2));
		break;
	default: /* sendmmsg */
		if (SYS_ENTER_ARG(regs, 2) > 0)
			on_sendmsg(fd, (const struct user_msghdr *)SYS_ENTER_ARG(regs, 1), SYS_ENTER_ARG(regs, 3));
	}
	return 0;
}

/*
 * io_uring: IORING_OP_CONNECT makes no connect system call. The submission
 * tracepoint runs after the request is prepared (io_init_req), so the
 * request holds the caller's address pointer and length (struct io_connect,
 * at the start of the request like every opcode's command) and the fd. The
 * connect itself is reported with sockfd -1, as the kernel-side backends do.
 * A fixed file's fd indexes the ring's table, not the process's: the type is
 * then not known.
 */
static __always_inline void on_io_uring_request(struct io_kiocb *req)
{
	struct io_connect *conn = (struct io_connect *)req;
	__u8 low_flags = 0;
	int fd;

	if (BPF_CORE_READ(req, opcode) != bpf_core_enum_value(enum io_uring_op, IORING_OP_CONNECT))
		return;
	/* REQ_F_FIXED_FILE is bit 0; the flags word's size differs by kernel. */
	bpf_probe_read_kernel(&low_flags, sizeof(low_flags), &req->flags);
	fd = BPF_CORE_READ(req, cqe.fd);
	emit_user_sockaddr(CS_HOOK_TRACEPOINT, 0, -1, BPF_CORE_READ(conn, addr), BPF_CORE_READ(conn, addr_len), CS_VIA_IO_URING,
			   (low_flags & REQ_F_FIXED_FILE) ? 0 : fd_socket(fd));
}

/* Linux 6.3 and later. */
SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(handle_io_uring_submit_req, struct io_kiocb *req)
{
	on_io_uring_request(req);
	return 0;
}

/*
 * Linux 6.0 to 6.2: the same tracepoint under its old name. Where its first
 * argument is the ring instead (5.10, 5.15), that is a void pointer to the
 * verifier, which refuses the load of opcode below: the backend then runs
 * without io_uring and says so in its gaps.
 */
SEC("tp_btf/io_uring_submit_sqe")
int BPF_PROG(handle_io_uring_submit_sqe, struct io_kiocb *req, bool force_nonblock)
{
	if (req->opcode != bpf_core_enum_value(enum io_uring_op, IORING_OP_CONNECT))
		return 0;
	on_io_uring_request(req);
	return 0;
}
