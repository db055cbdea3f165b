/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * What became of a connect (outcome.bpf.c follows it): the ids that join a
 * connect record to its outcome, and the two tables of connects whose end is
 * not known yet.
 *
 *   connect record (any backend)  -> pending_by_tid[tid]
 *   TCP socket enters SYN_SENT    -> pending_by_sk[sk]   (in the connecting task)
 *   the system call returns       -> result; the UDP/UNIX outcome is complete
 *   the TCP handshake ends        -> state, error, local endpoint, cookie
 *   both known                    -> one outcome record in the ring
 */
#ifndef CONNSCOPE_OUTCOME_BPF_H
#define CONNSCOPE_OUTCOME_BPF_H

#include "ring.bpf.h"

/* Set by user space before load: whether outcomes are followed at all. */
const volatile bool track_outcomes __weak = false;
/*
 * Set instead of track_outcomes when no one asked for outcomes but a
 * connect(2) an LSM refused before the backend's hook must still be reported
 * (outcome.bpf.c, late records): each connect(2) attempt only marks its
 * thread's slot in attempt_marks, and only the exit of connect(2) looks at
 * it. No handshake is followed.
 */
const volatile bool mark_attempts __weak = false;

/*
 * The marks, by thread id modulo the size: an array, whose update is a plain
 * store (the LRU table's costs about 200 ns a connect). Two threads of one
 * slot connecting at the same moment can make the first look unmarked at its
 * return: a refused one is then reported twice (by the hook and late), never
 * missed.
 */
#define ATTEMPT_MARKS 16384 /* a power of two */
struct attempt_mark {
	__u32 tid;
	__u32 exited; /* its connect(2) returned */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ATTEMPT_MARKS);
	__type(key, __u32);
	__type(value, struct attempt_mark);
} attempt_marks SEC(".maps") __weak;

static __always_inline struct attempt_mark *attempt_mark_of(__u32 tid)
{
	__u32 slot = tid & (ATTEMPT_MARKS - 1);

	return bpf_map_lookup_elem(&attempt_marks, &slot);
}

/* A connect whose system call has not returned yet. */
struct pending_connect {
	__u64 connect_id;
	__u64 attempt_boot_ns;
	__s32 fd;         /* the connect record's sockfd */
	__s32 lsm_result; /* CS_OUTCOME_LSM_KNOWN */
	__u16 via;
	__u16 flags;      /* CS_OUTCOME_LSM_KNOWN, CS_OUTCOME_SYN_SENT */
	__u16 sock_type;
	__u16 pad;
	__u64 sk;         /* the socket, once it reached SYN_SENT */
};

/*
 * LRU: an entry whose system call never returns to us (a task that exits in
 * the middle, an io_uring request) gives way to newer ones. One per thread,
 * since a thread is in one connect at a time.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct pending_connect);
} pending_by_tid SEC(".maps") __weak;

/*
 * TCP connects in their handshake. Not LRU: a scan with more half-open
 * connects than this must not evict silently; an insert that fails is a
 * counted loss of that outcome. Every socket that reaches SYN_SENT leaves it
 * (ESTABLISHED, or CLOSE when refused, timed out, closed), which frees it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct cs_outcome);
} pending_by_sk SEC(".maps") __weak;

/* Per-CPU halves of connect ids: the counter, with the CPU in the top bits. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} connect_id_counter SEC(".maps") __weak;

/* A Session-unique, non-zero id: up to 2^40 connects per CPU. */
static __always_inline __u64 next_connect_id(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&connect_id_counter, &zero);
	__u64 count = 1;

	if (n)
		count = ++*n;
	return (__u64)bpf_get_smp_processor_id() << 40 | (count & ((1ULL << 40) - 1));
}

/*
 * Starts following a connect just written to the ring. lsm_known: the
 * record's hook runs only after every LSM allowed the connect (cgroup, lsm).
 * An io_uring request makes no system call of ours, so only its TCP
 * handshake is followed; without TCP nothing would ever end its entry.
 */
static __always_inline void track_connect(const struct cs_connect_record *rec, bool lsm_known)
{
	struct pending_connect p = {};
	__u32 tid = rec->proc.tid;

	if (mark_attempts) {
		/* For connect(2)'s exit alone: a send's mark would look like its. */
		struct attempt_mark *m = rec->via == CS_VIA_CONNECT ? attempt_mark_of(tid) : NULL;

		if (m) {
			m->tid = tid;
			m->exited = 0;
		}
		return;
	}
	if (!track_outcomes)
		return;
	if (rec->via == CS_VIA_IO_URING && rec->sock_type != 1 /* SOCK_STREAM */)
		return;
	p.connect_id = rec->connect_id;
	p.attempt_boot_ns = rec->hdr.boot_ns;
	p.fd = rec->sockfd;
	p.via = rec->via;
	p.sock_type = rec->sock_type;
	if (lsm_known)
		p.flags = CS_OUTCOME_LSM_KNOWN;
	bpf_map_update_elem(&pending_by_tid, &tid, &p, BPF_ANY);
}

/* The LSM verdict, from fexit or a kretprobe on security_socket_connect. */
static __always_inline void track_lsm_verdict(int ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending_connect *p;

	if (!track_outcomes)
		return;
	p = bpf_map_lookup_elem(&pending_by_tid, &tid);
	if (!p)
		return;
	p->lsm_result = ret;
	p->flags |= CS_OUTCOME_LSM_KNOWN;
}

#endif
