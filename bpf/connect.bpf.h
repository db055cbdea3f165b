/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The connect context every connect backend builds its record from: who
 * (fill_process()), the fd and path (connect_origin()), the reservation and the
 * submit. Filtering is left to the callers (filters.bpf.h), which check
 * before connect_begin() reserves anything.
 */
#ifndef CONNSCOPE_CONNECT_BPF_H
#define CONNSCOPE_CONNECT_BPF_H

#include "outcome.bpf.h"
#include "ring.bpf.h"
#include "syscall.bpf.h"
#include <bpf/bpf_tracing.h>

/* task_struct.flags of io_uring's worker threads. */
#define PF_IO_WORKER 0x00000010
/* The flag a send asks for Fast Open with, and the sysctl bit that lets it. */
#define MSG_FASTOPEN 0x20000000
#define TFO_CLIENT_ENABLE 1
#define SOCK_STREAM 1
#define SS_UNCONNECTED 1
#define SS_CONNECTING 2
#define IPPROTO_TCP 6
#define IPPROTO_MPTCP 262
/* The kernel's SOCK_TYPE_MASK: the SOCK_* type without SOCK_NONBLOCK, SOCK_CLOEXEC. */
#define SOCK_TYPE_MASK 0xf
/* The kernel's MAX_PID_NS_LEVEL: a pid has levels 0..31. */
#define MAX_PID_NS_LEVEL 32

/*
 * Whether the BTF-typed task pointer can be had. bpf_get_current_task_btf
 * (helper 158) is from Linux 5.11, and a kernel refuses a program that calls
 * a helper it does not know ("invalid func unknown#158" on 5.10) even where
 * the call is never reached; but it never checks a branch it proves dead.
 * libbpf turns this CO-RE check into a constant, so each kernel verifies and
 * runs one of the two paths and the other costs nothing. (cgroup programs get
 * the helper only from 5.15: cgroup.bpf.c has flavours for older kernels.)
 */
static __always_inline bool task_btf_usable(void)
{
	return bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf);
}

/*
 * Reads through the BTF-typed task pointer are plain loads the verifier
 * guards, where BPF_CORE_READ() would make one helper call per pointer; this
 * is most of a hook's cost (about 1.1 us against 0.15 us, see
 * docs/performance.md). CO-RE still relocates every field.
 */
static __always_inline void fill_process_btf(struct cs_process *p)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct nsproxy *ns = task->nsproxy;
	const struct cred *cred = task->cred;
	struct pid *tpid = task->thread_pid;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();

	p->pid = pid_tgid >> 32;
	p->tid = (__u32)pid_tgid;
	p->uid = (__u32)uid_gid;
	p->gid = uid_gid >> 32;
	p->ppid = task->real_parent->tgid;
	p->cgroup_id = bpf_get_current_cgroup_id();
	/* A task that is exiting has no nsproxy any more. */
	if (ns) {
		p->mnt_ns = ns->mnt_ns->ns.inum;
		p->net_ns = ns->net_ns->ns.inum;
		p->uts_ns = ns->uts_ns->ns.inum;
		p->ipc_ns = ns->ipc_ns->ns.inum;
		p->cgroup_ns = ns->cgroup_ns->ns.inum;
	} else {
		/* Ring memory is not cleared: say "not known", not a stale value. */
		p->mnt_ns = p->net_ns = p->uts_ns = p->ipc_ns = p->cgroup_ns = 0;
	}
	p->user_ns = cred->user_ns->ns.inum;
	/*
	 * The PID namespace a task lives in is the one at its pid's level; the
	 * verifier refuses a variable index on a BTF pointer, so this one read
	 * goes through the helper.
	 */
	p->pid_ns = BPF_CORE_READ(&tpid->numbers[tpid->level & (MAX_PID_NS_LEVEL - 1)], ns, ns.inum);
	bpf_get_current_comm(p->comm, sizeof(p->comm));
}

/* The same fields without the BTF pointer: one helper read per pointer. */
static __always_inline void fill_process_compat(struct cs_process *p)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct nsproxy *ns = BPF_CORE_READ(task, nsproxy);
	struct pid *tpid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(tpid, level);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();

	p->pid = pid_tgid >> 32;
	p->tid = (__u32)pid_tgid;
	p->uid = (__u32)uid_gid;
	p->gid = uid_gid >> 32;
	p->ppid = BPF_CORE_READ(task, real_parent, tgid);
	p->cgroup_id = bpf_get_current_cgroup_id();
	if (ns) {
		p->mnt_ns = BPF_CORE_READ(ns, mnt_ns, ns.inum);
		p->net_ns = BPF_CORE_READ(ns, net_ns, ns.inum);
		p->uts_ns = BPF_CORE_READ(ns, uts_ns, ns.inum);
		p->ipc_ns = BPF_CORE_READ(ns, ipc_ns, ns.inum);
		p->cgroup_ns = BPF_CORE_READ(ns, cgroup_ns, ns.inum);
	} else {
		/* Ring memory is not cleared: say "not known", not a stale value. */
		p->mnt_ns = p->net_ns = p->uts_ns = p->ipc_ns = p->cgroup_ns = 0;
	}
	p->user_ns = BPF_CORE_READ(task, cred, user_ns, ns.inum);
	p->pid_ns = BPF_CORE_READ(&tpid->numbers[level & (MAX_PID_NS_LEVEL - 1)], ns, ns.inum);
	bpf_get_current_comm(p->comm, sizeof(p->comm));
}

/* task_btf: the caller's task_btf_usable(), or false where it knows better. */
static __always_inline void fill_process(struct cs_process *p, bool task_btf)
{
	if (task_btf)
		fill_process_btf(p);
	else
		fill_process_compat(p);
}

/*
 * Where a connect came from, told by the system call the task is in (its
 * number in the user registers saved at the top of the kernel stack, read by
 * syscall.bpf.h for the target architecture) and, for io_uring's worker
 * threads, by the task's flags.
 */
static __always_inline struct connect_origin connect_origin(bool task_btf)
{
	struct task_struct *task = task_btf ? bpf_get_current_task_btf()
					    : (struct task_struct *)bpf_get_current_task();
	struct connect_origin out = {.fd = -1, .via = CS_VIA_UNKNOWN};
	unsigned int flags = task_btf ? task->flags : BPF_CORE_READ(task, flags);
	void *stack = task_btf ? task->stack : BPF_CORE_READ(task, stack);

	/* io-wq workers and (from 5.12) the SQPOLL thread: their registers are
	 * not a system call's. */
	if (flags & PF_IO_WORKER) {
		out.via = CS_VIA_IO_URING;
		return out;
	}
	if (!stack)
		return out;
	return syscall_origin(stack, in_compat_syscall(task, task_btf));
}

/*
 * Whether a send with MSG_FASTOPEN and an address connects this socket:
 * tcp_sendmsg does it for an unconnected TCP (or MPTCP) socket when the
 * network namespace's net.ipv4.tcp_fastopen has the client bit; otherwise
 * the send fails (EOPNOTSUPP, EISCONN) or only sends, and there is no
 * connect to report. btf_args: sock is a BTF pointer (lsm, fentry), so its
 * fields are plain loads; elsewhere they are read through the helper.
 */
static __always_inline bool fastopen_socket_connects(struct socket *sock, bool btf_args)
{
	struct sock *sk;

	if ((btf_args ? sock->state : BPF_CORE_READ(sock, state)) != SS_UNCONNECTED ||
	    ((btf_args ? sock->type : BPF_CORE_READ(sock, type)) & SOCK_TYPE_MASK) != SOCK_STREAM)
		return false;
	sk = btf_args ? sock->sk : BPF_CORE_READ(sock, sk);
	if (!sk)
		return false;
	switch (BPF_CORE_READ(sk, sk_protocol)) {
	case IPPROTO_TCP:
	case IPPROTO_MPTCP:
		break;
	default:
		return false;
	}
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ipv4.sysctl_tcp_fastopen) & TFO_CLIENT_ENABLE;
}

/* The fd alone (bench/reference.bpf.c measures the hooks with it). */
static __always_inline __s32 syscall_connect_fd(bool task_btf)
{
	return connect_origin(task_btf).fd;
}

/*
 * Reserves a connect record with the process context filled in, or counts
 * the loss. hook is the CS_HOOK_* of the calling program; task_btf as for
 * fill_process().
 */
static __always_inline struct cs_connect_record *connect_begin(__u16 hook, __u16 sock_type, bool task_btf)
{
	struct cs_connect_record *rec;

	rec = bpf_ringbuf_reserve(&events_rb, sizeof(*rec), 0);
	if (!rec) {
		count_lost(CS_REC_CONNECT);
		return 0;
	}
	rec->hdr.type = CS_REC_CONNECT;
	rec->hdr.size = sizeof(*rec);
	rec->hdr.boot_ns = bpf_ktime_get_boot_ns();
	fill_process(&rec->proc, task_btf);
	rec->sockfd = -1;
	rec->sock_type = sock_type;
	rec->flags = 0;
	rec->addrlen = 0;
	rec->hook = hook;
	rec->via = CS_VIA_UNKNOWN;
	rec->connect_id = next_connect_id();
	return rec;
}

/* Hands the record to the consumer and starts following its outcome. */
static __always_inline void connect_submit(struct cs_connect_record *rec)
{
	/* The cgroup and lsm hooks run only once the LSMs before them allowed it. */
	track_connect(rec, rec->hook == CS_HOOK_CGROUP || rec->hook == CS_HOOK_LSM);
	bpf_ringbuf_submit(rec, submit_flags());
}

/*
 * A read size in [1, CS_SOCKADDR_MAX] for an address length > 0, written as
 * a mask so the verifier can bound it whatever the compiler does to a clamp.
 */
static __always_inline __u32 sockaddr_read_size(__u32 len)
{
	if (len > CS_SOCKADDR_MAX)
		len = CS_SOCKADDR_MAX;
	return ((len - 1) & (CS_SOCKADDR_MAX - 1)) + 1;
}

#endif
