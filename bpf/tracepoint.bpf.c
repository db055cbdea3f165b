// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The tracepoint backend: the connect syscall's entry. It reads the caller's
 * copy of the address, which the caller may change before the kernel copies
 * it, so its records carry CS_CONNECT_TOCTOU. It does not see io_uring
 * connects (they make no connect syscall).
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

static __always_inline void emit_user_sockaddr(int fd, const void *uaddr, int addrlen)
{
	struct cs_connect_record *rec;
	struct socket *sock;

	if (!sockaddr_wanted(uaddr, addrlen, true))
		return;
	sock = fd_socket(fd);

	rec = connect_begin(CS_HOOK_TRACEPOINT, sock ? BPF_CORE_READ(sock, type) & SOCK_TYPE_MASK : 0,
			    task_btf_usable());
	if (!rec)
		return;
	rec->sockfd = fd;
	rec->flags = CS_CONNECT_TOCTOU;
	rec->addrlen = addrlen < 0 ? 0 : addrlen;
	__builtin_memset(rec->addr, 0, sizeof(rec->addr));
	if (addrlen > 0 && bpf_probe_read_user(rec->addr, sockaddr_read_size(addrlen), uaddr))
		rec->flags |= CS_CONNECT_ADDR_FAULT;
	connect_submit(rec);
}

/* Where tracefs is mounted: fires for connect only. */
SEC("tracepoint/syscalls/sys_enter_connect")
int handle_sys_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	emit_user_sockaddr((int)ctx->args[0], (const void *)ctx->args[1], (int)ctx->args[2]);
	return 0;
}

/* Without tracefs: every syscall's entry, filtered on the syscall number. */
SEC("tp_btf/sys_enter")
int BPF_PROG(handle_tp_btf_sys_enter, struct pt_regs *regs, long id)
{
	if (id != NR_CONNECT_X86_64)
		return 0;
	emit_user_sockaddr((int)BPF_CORE_READ(regs, di), (const void *)BPF_CORE_READ(regs, si),
			   (int)BPF_CORE_READ(regs, dx));
	return 0;
}
