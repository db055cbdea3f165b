/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Records made from the caller's copy of the address (toctou): the
 * tracepoint backend's, and the late records of outcome.bpf.c.
 */
#ifndef CONNSCOPE_USER_SOCKADDR_BPF_H
#define CONNSCOPE_USER_SOCKADDR_BPF_H

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

static __always_inline void emit_user_sockaddr(__u16 hook, __u16 flags, int fd, const void *uaddr, int addrlen,
					       __u16 via, struct socket *sock)
{
	struct cs_connect_record *rec;

	if (!sockaddr_wanted(uaddr, addrlen, true))
		return;
	rec = connect_begin(hook, sock ? BPF_CORE_READ(sock, type) & SOCK_TYPE_MASK : 0,
			    task_btf_usable());
	if (!rec)
		return;
	rec->sockfd = fd;
	rec->via = via;
	rec->flags = CS_CONNECT_TOCTOU | flags;
	rec->addrlen = addrlen < 0 ? 0 : addrlen;
	__builtin_memset(rec->addr, 0, sizeof(rec->addr));
	if (addrlen > 0 && bpf_probe_read_user(rec->addr, sockaddr_read_size(addrlen), uaddr))
		rec->flags |= CS_CONNECT_ADDR_FAULT;
	connect_submit(rec);
}

#endif
