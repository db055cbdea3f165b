// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * What became of each connect (outcome.bpf.h has the tables): the exits of
 * the system calls that connect, and the TCP state changes that end a
 * handshake. Loaded with every backend; each program only reads.
 *
 * A backend whose hook runs after the LSMs (cgroup, lsm) never sees a
 * connect an LSM refused. For those, the exit of connect(2) with EACCES or
 * EPERM and no record of ours makes a late record from the caller's
 * arguments (CS_CONNECT_LATE), so no refused attempt goes unreported.
 */
#include "user_sockaddr.bpf.h"

#define EPERM 1
#define EACCES 13
#define EINPROGRESS 115

/* Set by user space before load. */
const volatile bool late_records = false;     /* the backend's hook runs after the LSMs */
const volatile bool cookie_in_tracing = false; /* bpf_get_socket_cookie in tracing programs: 5.12 */

static __always_inline void emit_outcome(const struct cs_outcome *o)
{
	struct cs_outcome_record *rec = bpf_ringbuf_reserve(&events_rb, sizeof(*rec), 0);

	if (!rec) {
		count_lost(CS_REC_OUTCOME);
		return;
	}
	rec->hdr.type = CS_REC_OUTCOME;
	rec->hdr.size = sizeof(*rec);
	rec->hdr.boot_ns = bpf_ktime_get_boot_ns();
	__builtin_memcpy(&rec->out, o, sizeof(*o));
	rec->out.flags &= ~CS_OUTCOME_SYN_SENT;
	bpf_ringbuf_submit(rec, submit_flags());
}

/*
 * The address and port the kernel bound the socket to, and its cookie. The
 * port is inet_sport: a socket that closes gives its inet_num back before
 * the state change is traced, but keeps inet_sport.
 */
static __always_inline void read_local(struct cs_outcome *o, const struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (family == AF_INET) {
		bpf_core_read(o->local_addr, 4, &sk->__sk_common.skc_rcv_saddr);
	} else if (family == AF_INET6) {
		bpf_core_read(o->local_addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
	} else {
		return;
	}
	o->local_family = family;
	o->local_port = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	o->cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	o->flags |= CS_OUTCOME_LOCAL;
}

/*
 * A connect(2) that an LSM ahead of the backend's hook refused: report the
 * attempt now, from the caller's copy of its arguments, then its outcome.
 */
static __always_inline bool emit_late_record(long ret)
{
	struct pt_regs *regs = current_syscall_regs(NR_CONNECT);
	int fd;

	if (!regs)
		return false;
	fd = (int)SYS_ENTER_ARG(regs, 0);
	emit_user_sockaddr(CS_HOOK_SYSCALL_EXIT, CS_CONNECT_LATE, fd, (const void *)SYS_ENTER_ARG(regs, 1),
			   (int)SYS_ENTER_ARG(regs, 2), CS_VIA_CONNECT, fd_socket(fd));
	return true;
}

/*
 * mark_attempts: connect(2) returned ret. An unused mark of this thread's
 * is this connect's, which the backend's hook saw; else, refused, it is
 * reported late.
 */
static __always_inline void on_connect_exit_marked(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct attempt_mark *m = attempt_mark_of(tid);

	if (!m)
		return;
	if (m->tid == tid && !m->exited) {
		m->exited = 1;
		return;
	}
	if ((ret != -EACCES && ret != -EPERM) || !emit_late_record(ret))
		return;
	/* The late record marked the slot as a new attempt: this is its end. */
	if (m->tid == tid)
		m->exited = 1;
}

/* The system call that asked for a connect returned ret. via: its path. */
static __always_inline void on_syscall_exit(long ret, __u16 via)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending_connect *pp;
	struct pending_connect p;
	struct cs_outcome o = {};

	if (!track_outcomes) {
		if (mark_attempts && late_records && via == CS_VIA_CONNECT)
			on_connect_exit_marked(ret);
		return;
	}
	pp = bpf_map_lookup_elem(&pending_by_tid, &tid);
	if (!pp) {
		if (!late_records || via != CS_VIA_CONNECT || (ret != -EACCES && ret != -EPERM) ||
		    !emit_late_record(ret))
			return;
		pp = bpf_map_lookup_elem(&pending_by_tid, &tid);
		if (!pp)
			return; /* filtered out, or the ring was full (counted) */
		pp->lsm_result = ret;
		pp->flags |= CS_OUTCOME_LSM_KNOWN;
	}
	/* A send without MSG_FASTOPEN, or a connect of another path. */
	if (pp->via != via)
		return;
	p = *pp;
	bpf_map_delete_elem(&pending_by_tid, &tid);

	if (p.flags & CS_OUTCOME_SYN_SENT) {
		struct cs_outcome *tcp = bpf_map_lookup_elem(&pending_by_sk, &p.sk);

		if (tcp && tcp->connect_id == p.connect_id) {
			tcp->result = ret;
			tcp->flags |= CS_OUTCOME_RESULT;
			/* Otherwise the handshake is still on (EINPROGRESS): its end completes it. */
			if (tcp->flags & CS_OUTCOME_TCP) {
				emit_outcome(tcp);
				bpf_map_delete_elem(&pending_by_sk, &p.sk);
			}
			return;
		}
	}
	/* UDP, UNIX, or a connect that failed before its handshake began. */
	o.connect_id = p.connect_id;
	o.attempt_boot_ns = p.attempt_boot_ns;
	o.end_boot_ns = bpf_ktime_get_boot_ns();
	o.pid = bpf_get_current_pid_tgid() >> 32;
	o.tid = tid;
	o.result = ret;
	o.lsm_result = p.lsm_result;
	o.flags = CS_OUTCOME_RESULT | (p.flags & CS_OUTCOME_LSM_KNOWN);
	o.via = p.via;
	if (ret >= 0 && p.fd >= 0) {
		struct socket *sock = fd_socket(p.fd);

		if (sock)
			read_local(&o, BPF_CORE_READ(sock, sk));
	}
	emit_outcome(&o);
}

/* A TCP socket left CLOSE for SYN_SENT: in the connecting task, so the
 * thread's pending connect is this socket's. */
static __always_inline void on_syn_sent(const struct sock *sk)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending_connect *p = bpf_map_lookup_elem(&pending_by_tid, &tid);
	__u64 key = (__u64)sk;
	struct cs_outcome o = {};

	if (!p || (p->flags & CS_OUTCOME_SYN_SENT) || p->sock_type != 1 /* SOCK_STREAM */)
		return;
	o.connect_id = p->connect_id;
	o.attempt_boot_ns = p->attempt_boot_ns;
	o.pid = bpf_get_current_pid_tgid() >> 32;
	o.tid = tid;
	o.lsm_result = p->lsm_result;
	o.flags = p->flags & CS_OUTCOME_LSM_KNOWN;
	o.via = p->via;
	if (bpf_map_update_elem(&pending_by_sk, &key, &o, BPF_ANY)) {
		count_lost(CS_REC_OUTCOME); /* more handshakes at once than the table holds */
		return;
	}
	p->flags |= CS_OUTCOME_SYN_SENT;
	p->sk = key;
	/* No system call of ours returns for an io_uring request. */
	if (p->via == CS_VIA_IO_URING)
		bpf_map_delete_elem(&pending_by_tid, &tid);
}

/* The handshake ended: ESTABLISHED, or CLOSE (reset, timeout, ICMP error, close). */
static __always_inline void on_handshake_end(const struct sock *sk, int state)
{
	__u64 key = (__u64)sk;
	struct cs_outcome *o = bpf_map_lookup_elem(&pending_by_sk, &key);

	if (!o)
		return;
	o->tcp_state = state;
	o->sk_err = BPF_CORE_READ(sk, sk_err);
	o->end_boot_ns = bpf_ktime_get_boot_ns();
	o->flags |= CS_OUTCOME_TCP;
	read_local(o, sk);
	if (cookie_in_tracing)
		o->cookie = bpf_get_socket_cookie((void *)sk);
	/* A connect(2) or Fast Open send still in its system call completes it there. */
	if ((o->flags & CS_OUTCOME_RESULT) || o->via == CS_VIA_IO_URING || o->via == CS_VIA_UNKNOWN) {
		emit_outcome(o);
		bpf_map_delete_elem(&pending_by_sk, &key);
	}
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(handle_inet_sock_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	if (newstate == CS_TCP_SYN_SENT)
		on_syn_sent(sk);
	else if (oldstate == CS_TCP_SYN_SENT && (newstate == CS_TCP_ESTABLISHED || newstate == CS_TCP_CLOSE))
		on_handshake_end(sk, newstate);
	return 0;
}

/* Where tracefs is mounted: each fires for its own system call only. */
SEC("tracepoint/syscalls/sys_exit_connect")
int handle_sys_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	on_syscall_exit(ctx->ret, CS_VIA_CONNECT);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int handle_sys_exit_sendto(struct trace_event_raw_sys_exit *ctx)
{
	on_syscall_exit(ctx->ret, CS_VIA_FASTOPEN);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int handle_sys_exit_sendmsg(struct trace_event_raw_sys_exit *ctx)
{
	on_syscall_exit(ctx->ret, CS_VIA_FASTOPEN);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendmmsg")
int handle_sys_exit_sendmmsg(struct trace_event_raw_sys_exit *ctx)
{
	on_syscall_exit(ctx->ret, CS_VIA_FASTOPEN);
	return 0;
}

/* Without tracefs: every system call's exit, filtered on its number. */
SEC("tp_btf/sys_exit")
int BPF_PROG(handle_tp_btf_sys_exit, struct pt_regs *regs, long ret)
{
	long id = SYSCALL_NR(regs);

	if (id == NR_CONNECT)
		on_syscall_exit(ret, CS_VIA_CONNECT);
	else if (id == NR_SENDTO || id == NR_SENDMSG || id == NR_SENDMMSG)
		on_syscall_exit(ret, CS_VIA_FASTOPEN);
	return 0;
}
