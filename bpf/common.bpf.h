/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * What every backend shares: the one ring buffer, loss counters, settings,
 * and fill_process()/connect_*() that build a connect record. Each backend's
 * .bpf.c is a thin entry point over these. Maps and settings are __weak so
 * that every .bpf.c can include this header and `bpftool gen object` links
 * them into one object with one copy of each.
 */
#ifndef CONNSCOPE_COMMON_BPF_H
#define CONNSCOPE_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#include "wire.h"

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define NR_CONNECT_X86_64 42

/* Sized by user space before load (Options::ring_size). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events_rb SEC(".maps") __weak;

/* Reservation failures by record type, per CPU so counting never contends. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CS_REC_TYPES);
	__type(key, __u32);
	__type(value, __u64);
} lost_counts SEC(".maps") __weak;

/* Scope filters, changed by user space while running (maps, not reloads). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cs_filter_config);
} filter_config SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_FILTER_SET_MAX);
	__type(key, __u32);
	__type(value, __u8);
} filter_pids SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_FILTER_SET_MAX);
	__type(key, __u32);
	__type(value, __u8);
} filter_uids SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_FILTER_SET_MAX);
	__type(key, char[CS_COMM_LEN]);
	__type(value, __u8);
} filter_comms SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_FILTER_SET_MAX);
	__type(key, __u64);
	__type(value, __u8);
} filter_cgroups SEC(".maps") __weak;

/* Ring fill, in bytes, past which a submit wakes the consumer. */
const volatile __u64 wakeup_watermark __weak = 1 << 20;
/* THREAD_SIZE of the running kernel: 16 KiB, 32 KiB with KASAN. */
const volatile __u32 thread_size __weak = 16384;

static __always_inline void count_lost(__u32 type)
{
	__u64 *n = bpf_map_lookup_elem(&lost_counts, &type);
	if (n)
		*n += 1;
}

/* Submit without a wakeup unless the ring is filling up (ARCHITECTURE.md). */
static __always_inline __u64 submit_flags(void)
{
	return bpf_ringbuf_query(&events_rb, BPF_RB_AVAIL_DATA) >= wakeup_watermark
		       ? BPF_RB_FORCE_WAKEUP
		       : BPF_RB_NO_WAKEUP;
}

/*
 * Reads through the BTF-typed task pointer are plain loads the verifier
 * guards, where BPF_CORE_READ() would make one helper call per pointer; this
 * is most of a hook's cost (about 1.1 us against 0.15 us, see
 * docs/performance.md). CO-RE still relocates every field.
 */
static __always_inline void fill_process(struct cs_process *p)
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
	}
	p->user_ns = cred->user_ns->ns.inum;
	/*
	 * The PID namespace a task lives in is the one at its pid's level; the
	 * verifier refuses a variable index on a BTF pointer, so this one read
	 * goes through the helper.
	 */
	p->pid_ns = BPF_CORE_READ(&tpid->numbers[tpid->level & 31], ns, ns.inum);
	bpf_get_current_comm(p->comm, sizeof(p->comm));
}

/*
 * sockfd is not an argument of the hooks: read it from the user registers
 * saved at the top of the kernel stack, but only when the current syscall is
 * connect (io_uring and socketcall have no fd to give). x86 FRED kernels pad
 * the stack top by 16 bytes, so both layouts are tried; orig_ax must say
 * connect for either to count.
 */
static __always_inline __s32 syscall_connect_fd(void)
{
	void *stack = bpf_get_current_task_btf()->stack;
	__u32 pad;

	if (!stack)
		return -1;
	for (pad = 0; pad <= 16; pad += 16) {
		struct pt_regs *regs = stack + thread_size - pad - bpf_core_type_size(struct pt_regs);
		/* di and orig_ax are neighbours in x86_64's pt_regs: one read for both. */
		struct {
			unsigned long di;
			unsigned long orig_ax;
		} tail;

		if (bpf_core_field_offset(struct pt_regs, orig_ax) !=
		    bpf_core_field_offset(struct pt_regs, di) + sizeof(tail.di))
			return -1;
		if (bpf_probe_read_kernel(&tail, sizeof(tail), &regs->di))
			continue;
		if (tail.orig_ax == NR_CONNECT_X86_64)
			return (__s32)tail.di;
	}
	return -1;
}

/* Whether the current task is in one of the filter's cgroups or below one. */
static __always_inline bool in_filtered_cgroup(struct task_struct *task)
{
	struct cgroup *cg = BPF_CORE_READ(task, cgroups, dfl_cgrp);

	for (int depth = 0; depth < CS_FILTER_CGROUP_DEPTH && cg; depth++) {
		__u64 id = BPF_CORE_READ(cg, kn, id);
		struct cgroup_subsys_state *parent;

		if (bpf_map_lookup_elem(&filter_cgroups, &id))
			return true;
		parent = BPF_CORE_READ(cg, self.parent);
		if (!parent)
			break;
		cg = (void *)parent - bpf_core_field_offset(struct cgroup, self);
	}
	return false;
}

/*
 * The scope filters, evaluated before anything is reserved so that a
 * filtered-out connect costs about what an empty hook costs. port is in host
 * order; a connect without a port (UNIX) never matches a port filter.
 */
static __always_inline bool connect_wanted(__u16 family, __u16 port, bool has_port)
{
	struct cs_filter_config *cfg;
	__u32 zero = 0, flags;

	cfg = bpf_map_lookup_elem(&filter_config, &zero);
	if (!cfg || !(flags = cfg->flags))
		return true;
	if (flags & CS_FILTER_FAMILY) {
		if (family >= 32 || !(cfg->families & (1u << family)))
			return false;
	}
	if (flags & CS_FILTER_PORT) {
		bool hit = false;

		if (!has_port)
			return false;
		for (int i = 0; i < CS_FILTER_PORT_RANGES_MAX; i++) {
			if (i >= cfg->port_range_count)
				break;
			if (port >= cfg->port_ranges[i].first && port <= cfg->port_ranges[i].last) {
				hit = true;
				break;
			}
		}
		if (!hit)
			return false;
	}
	if (flags & (CS_FILTER_PID | CS_FILTER_EXCLUDE_SELF)) {
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;

		if ((flags & CS_FILTER_EXCLUDE_SELF) && tgid == cfg->self_tgid)
			return false;
		if ((flags & CS_FILTER_PID) && !bpf_map_lookup_elem(&filter_pids, &tgid))
			return false;
	}
	if (flags & CS_FILTER_UID) {
		__u32 uid = (__u32)bpf_get_current_uid_gid();

		if (!bpf_map_lookup_elem(&filter_uids, &uid))
			return false;
	}
	if (flags & CS_FILTER_COMM) {
		char comm[CS_COMM_LEN] = {};

		bpf_get_current_comm(comm, sizeof(comm));
		if (!bpf_map_lookup_elem(&filter_comms, comm))
			return false;
	}
	if ((flags & CS_FILTER_CGROUP) && !in_filtered_cgroup(bpf_get_current_task_btf()))
		return false;
	return true;
}

/* Reads family and port of a sockaddr for the filters; false if unreadable. */
static __always_inline bool peek_sockaddr(const void *addr, int addrlen, bool user, __u16 *family,
					  __u16 *port)
{
	__u16 head[2] = {};

	if (addrlen < 2)
		return false;
	if (user ? bpf_probe_read_user(head, addrlen >= 4 ? 4 : 2, addr)
		 : bpf_probe_read_kernel(head, addrlen >= 4 ? 4 : 2, addr))
		return false;
	*family = head[0];
	*port = bpf_ntohs(head[1]);
	return true;
}

/* Whether a connect to this sockaddr passes the filters. */
static __always_inline bool sockaddr_wanted(const void *addr, int addrlen, bool user)
{
	__u16 family = 0, port = 0;
	bool readable = peek_sockaddr(addr, addrlen, user, &family, &port);

	return connect_wanted(family, port,
			      readable && addrlen >= 4 && (family == AF_INET || family == AF_INET6));
}

/* Reserves a connect record with the process context filled in, or counts the loss. */
static __always_inline struct cs_connect_record *connect_begin(__u16 backend, __u16 sock_type)
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
	fill_process(&rec->proc);
	rec->sockfd = -1;
	rec->sock_type = sock_type;
	rec->flags = 0;
	rec->addrlen = 0;
	rec->backend = backend;
	rec->pad = 0;
	return rec;
}

static __always_inline void connect_submit(struct cs_connect_record *rec)
{
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

/*
 * Emits a record for a sockaddr in kernel memory (lsm, fentry, kprobe). The
 * kernel always holds it in a whole sockaddr_storage (__sys_connect and
 * io_uring alike), so all 128 bytes are read; addrlen says which count.
 */
static __always_inline void emit_kernel_sockaddr(__u16 backend, struct socket *sock,
						 struct sockaddr *address, int addrlen)
{
	struct cs_connect_record *rec;

	if (!sockaddr_wanted(address, addrlen, false))
		return;
	rec = connect_begin(backend, BPF_CORE_READ(sock, type) & 0xf);
	if (!rec)
		return;
	rec->sockfd = syscall_connect_fd();
	rec->addrlen = addrlen < 0 ? 0 : addrlen;
	if (bpf_probe_read_kernel(rec->addr, sizeof(rec->addr), address)) {
		__builtin_memset(rec->addr, 0, sizeof(rec->addr));
		rec->flags |= CS_CONNECT_ADDR_FAULT;
	}
	connect_submit(rec);
}

/* GPL-compatible: the programs use GPL-only helpers (bpf_probe_read_kernel). */
char LICENSE[] SEC("license") __weak = "Dual BSD/GPL";

#endif
