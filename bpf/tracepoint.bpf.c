// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The tracepoint backend: the entries of connect and of the sends that can
 * connect (sendto, sendmsg, sendmmsg with MSG_FASTOPEN), and io_uring's
 * submission tracepoint for IORING_OP_CONNECT. It reads the caller's copy of
 * the address, which the caller may change before the kernel copies it, so
 * its records carry CS_CONNECT_TOCTOU.
 */
#include "connect.bpf.h"
#include "filters.bpf.h"

#define S_IFMT 00170000
#define S_IFSOCK 0140000

/* The socket behind fd in the current task, for its type; NULL if none. */
static __always_inline struct socket *fd_socket(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);
	struct file *file = 0;

	if (fd < 0 || (unsigned int)fd >= max)
		return 0;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	/* Only a socket's file has a struct socket behind private_data. */
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	return BPF_CORE_READ(file, private_data);
}

static __always_inline void emit_user_sockaddr(int fd, const void *uaddr, int addrlen, __u16 via,
					       struct socket *sock)
{
	struct cs_connect_record *rec;

	if (!sockaddr_wanted(uaddr, addrlen, true))
		return;
	rec = connect_begin(CS_HOOK_TRACEPOINT, sock ? BPF_CORE_READ(sock, type) & SOCK_TYPE_MASK : 0,
			    task_btf_usable());
	if (!rec)
		return;
	rec->sockfd = fd;
	rec->via = via;
	rec->flags = CS_CONNECT_TOCTOU;
	rec->addrlen = addrlen < 0 ? 0 : addrlen;
	__builtin_memset(rec->addr, 0, sizeof(rec->addr));
	if (addrlen > 0 && bpf_probe_read_user(rec->addr, sockaddr_read_size(addrlen), uaddr))
		rec->flags |= CS_CONNECT_ADDR_FAULT;
	connect_submit(rec);
}

static __always_inline void on_connect(int fd, const void *uaddr, int addrlen)
{
	emit_user_sockaddr(fd, uaddr, addrlen, CS_VIA_CONNECT, fd_socket(fd));
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
	emit_user_sockaddr(fd, uaddr, addrlen, CS_VIA_FASTOPEN, sock);
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
 * A 32-bit task's numbers mean other calls (its 42 is pipe), and the syscall
 * tracepoints above never fire for them either, so they are left out.
 */
SEC("tp_btf/sys_enter")
int BPF_PROG(handle_tp_btf_sys_enter, struct pt_regs *regs, long id)
{
	int fd;

	if (id != NR_CONNECT_X86_64 && id != NR_SENDTO_X86_64 && id != NR_SENDMSG_X86_64 &&
	    id != NR_SENDMMSG_X86_64)
		return 0;
	if (in_compat_syscall((struct task_struct *)bpf_get_current_task(), false))
		return 0;
	fd = (int)BPF_CORE_READ(regs, di);
	switch (id) {
	case NR_CONNECT_X86_64:
		on_connect(fd, (const void *)BPF_CORE_READ(regs, si), (int)BPF_CORE_READ(regs, dx));
		break;
	case NR_SENDTO_X86_64: /* the fifth and sixth arguments are in r8 and r9 */
		on_send(fd, BPF_CORE_READ(regs, r10), (const void *)BPF_CORE_READ(regs, r8),
			(int)BPF_CORE_READ(regs, r9));
		break;
	case NR_SENDMSG_X86_64:
		on_sendmsg(fd, (const struct user_msghdr *)BPF_CORE_READ(regs, si), BPF_CORE_READ(regs, dx));
		break;
	default: /* sendmmsg */
		if (BPF_CORE_READ(regs, dx) > 0)
			on_sendmsg(fd, (const struct user_msghdr *)BPF_CORE_READ(regs, si), BPF_CORE_READ(regs, r10));
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
	emit_user_sockaddr(-1, BPF_CORE_READ(conn, addr), BPF_CORE_READ(conn, addr_len), CS_VIA_IO_URING,
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
