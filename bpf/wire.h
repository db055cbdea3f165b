/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The records BPF programs write into the ring buffer and lib/ decodes.
 * Shared by kernel and user side: fixed-width types, explicit padding, and
 * size asserts, so both compilers agree on the layout. Never installed.
 */
#ifndef CONNSCOPE_WIRE_H
#define CONNSCOPE_WIRE_H

#ifdef __BPF__
/* vmlinux.h provides __u8..__u64 on the BPF side. */
#else
#include <linux/types.h>
#endif

#ifdef __cplusplus
#define CS_STATIC_ASSERT static_assert
#else
#define CS_STATIC_ASSERT _Static_assert
#endif

/* Record types; also the index into the lost_counts per-CPU array. */
#define CS_REC_CONNECT 1
#define CS_REC_DNS 2
#define CS_REC_OUTCOME 3
/* Not a record type: lost_counts' slot for DNS records dropped because the
 * ring was filled past dns_ring_limit (the connect records' reserve). */
#define CS_LOST_DNS_RESERVE 4
#define CS_REC_TYPES 5

#define CS_COMM_LEN 16
/* Enough for any sockaddr the kernel accepts (sockaddr_storage is 128). */
#define CS_SOCKADDR_MAX 128
/* DNS payload bytes one record can carry (the per-session bound is lower). */
#define CS_DNS_PAYLOAD_MAX 8192
#define CS_DNS_PORTS_MAX 16

/* Connect record flags. */
#define CS_CONNECT_TOCTOU 0x1   /* address read from user memory */
#define CS_CONNECT_ADDR_FAULT 0x2 /* the address could not be read */
/* Seen only when the connect system call returned: refused before the
 * backend's hook ran (by an LSM ahead of it); the address is the caller's. */
#define CS_CONNECT_LATE 0x4

/* DNS record flags. */
#define CS_DNS_TCP 0x1
#define CS_DNS_TRUNCATED 0x2
#define CS_DNS_TCP_FIN 0x4
#define CS_DNS_IPV6 0x8

struct cs_header {
	__u32 type;
	__u32 size;    /* whole record, header included */
	__u64 boot_ns; /* bpf_ktime_get_boot_ns() when the hook ran */
};

struct cs_process {
	__u32 pid;  /* tgid */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 mnt_ns;
	__u64 cgroup_id;
	__u32 net_ns;
	__u32 pid_ns;
	__u32 user_ns;
	__u32 uts_ns;
	__u32 ipc_ns;
	__u32 cgroup_ns;
	char comm[CS_COMM_LEN];
};

struct cs_connect_record {
	struct cs_header hdr;
	struct cs_process proc;
	__s32 sockfd;    /* -1 when not the connect syscall */
	__u16 sock_type; /* SOCK_* without flags */
	__u16 flags;     /* CS_CONNECT_* */
	__u32 addrlen;   /* as the caller passed it */
	__u16 hook;      /* CS_HOOK_* of the program that wrote the record (diagnostics; lib/ checks it) */
	__u16 via;       /* CS_VIA_*: the path that asked for the connect */
	__u8 addr[CS_SOCKADDR_MAX]; /* raw sockaddr, min(addrlen, CS_SOCKADDR_MAX) bytes valid */
	__u64 connect_id; /* joins the connect to its outcome record; never 0 */
};

/* Outcome flags: which parts of an outcome are known. */
#define CS_OUTCOME_RESULT 0x1    /* result: the system call returned it */
#define CS_OUTCOME_TCP 0x2       /* tcp_state, sk_err: the TCP handshake ended */
#define CS_OUTCOME_LSM_KNOWN 0x4 /* lsm_result: the verdict of security_socket_connect */
#define CS_OUTCOME_LOCAL 0x8     /* local_family, local_port, local_addr */
#define CS_OUTCOME_SYN_SENT 0x10 /* internal: the socket reached SYN_SENT, its end is followed */

/* TCP states of the kernel's enum (include/net/tcp_states.h). */
#define CS_TCP_ESTABLISHED 1
#define CS_TCP_SYN_SENT 2
#define CS_TCP_CLOSE 7

/*
 * What became of a connect: written when the last part of it is known (the
 * system call's return, or the end of the TCP handshake, whichever is later).
 */
struct cs_outcome {
	__u64 connect_id;      /* the connect record's */
	__u64 attempt_boot_ns; /* the connect record's hdr.boot_ns */
	__u64 end_boot_ns;     /* when the handshake ended, or the system call returned */
	__u64 cookie;          /* the socket cookie (SO_COOKIE); 0 when the kernel gave it none yet */
	__u32 pid;
	__u32 tid;
	__s32 result;          /* the system call's return (0, bytes sent, or -errno); CS_OUTCOME_RESULT */
	__s32 sk_err;          /* the socket's error when the handshake ended (positive errno, 0 none) */
	__s32 lsm_result;      /* security_socket_connect's return; CS_OUTCOME_LSM_KNOWN */
	__u16 flags;           /* CS_OUTCOME_* */
	__u16 tcp_state;       /* CS_TCP_ESTABLISHED or CS_TCP_CLOSE when CS_OUTCOME_TCP */
	__u16 local_family;    /* AF_INET, AF_INET6 */
	__u16 local_port;      /* host order */
	__u16 via;             /* CS_VIA_* */
	__u16 pad;
	__u8 local_addr[16];   /* IPv4 in the first 4 bytes */
};

struct cs_outcome_record {
	struct cs_header hdr; /* boot_ns: when the outcome was complete */
	struct cs_outcome out;
};

struct cs_dns_record {
	struct cs_header hdr;
	__u32 net_ns;    /* from the receiving socket's mark: the querying process's, or the socket's own */
	__u16 flags;     /* CS_DNS_* */
	__u16 sport;     /* host order */
	__u16 dport;     /* host order */
	__u16 captured;  /* payload bytes that follow */
	__u32 orig_len;  /* payload bytes in the packet */
	__u32 tcp_seq;   /* host order, TCP only */
	__u32 owner_uid; /* from the mark: see struct dns_owner in dns.bpf.h */
	__u8 saddr[16];  /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u32 owner_ns;  /* from the mark: see struct dns_owner in dns.bpf.h */
	__u32 pad;
	/* __u8 payload[captured] follows */
};

/*
 * In-kernel scope filters (filter_config map, one entry). Each active filter
 * must match (different filters: all of); within one, any value matches.
 */
#define CS_FILTER_PID 0x01
#define CS_FILTER_UID 0x02
#define CS_FILTER_COMM 0x04
#define CS_FILTER_CGROUP 0x08
#define CS_FILTER_FAMILY 0x10
#define CS_FILTER_PORT 0x20
#define CS_FILTER_EXCLUDE_SELF 0x40

#define CS_FILTER_PORT_RANGES_MAX 16
#define CS_FILTER_SET_MAX 4096  /* entries per pid/uid/comm/cgroup set */
#define CS_FILTER_CGROUP_DEPTH 32

struct cs_port_range {
	__u16 first; /* host order, inclusive */
	__u16 last;
};

struct cs_filter_config {
	__u32 flags;       /* CS_FILTER_* */
	__u32 self_tgid;   /* dropped when CS_FILTER_EXCLUDE_SELF */
	__u32 families;    /* bit (1 << family) for AF_UNIX, AF_INET, AF_INET6 */
	__u32 port_range_count;
	struct cs_port_range port_ranges[CS_FILTER_PORT_RANGES_MAX];
	/* The Session's canary connects go to loopback on this port; they pass
	 * every filter, so a filter cannot hide whether the hook fires. 0: none. */
	__u32 canary_port;
};

/* The program family that wrote a connect record (its hook field). */
#define CS_HOOK_LSM 1        /* lsm/socket_connect, socket_sendmsg */
#define CS_HOOK_FENTRY 2     /* fentry/security_socket_connect, security_socket_sendmsg */
#define CS_HOOK_KPROBE 3     /* kprobe/security_socket_connect, security_socket_sendmsg */
#define CS_HOOK_CGROUP 4     /* cgroup/connect4, connect6, connect_unix */
#define CS_HOOK_TRACEPOINT 5 /* syscalls/sys_enter_connect, _sendto, _sendmsg, _sendmmsg, tp_btf/sys_enter, io_uring */
#define CS_HOOK_SYSCALL_EXIT 6 /* syscalls/sys_exit_connect, tp_btf/sys_exit: CS_CONNECT_LATE records */
#define CS_HOOK_LAST CS_HOOK_SYSCALL_EXIT

/* The path a connect came by (its via field); connscope::ConnectVia names them. */
#define CS_VIA_UNKNOWN 0  /* no system call or io_uring request of ours: made by the kernel, or not told */
#define CS_VIA_CONNECT 1  /* connect(2), also 32-bit connect and socketcall */
#define CS_VIA_FASTOPEN 2 /* sendto, sendmsg or sendmmsg with MSG_FASTOPEN */
#define CS_VIA_IO_URING 3 /* an io_uring request: IORING_OP_CONNECT, or a send with MSG_FASTOPEN */
#define CS_VIA_LAST CS_VIA_IO_URING

CS_STATIC_ASSERT(sizeof(struct cs_filter_config) == 84, "cs_filter_config layout");
CS_STATIC_ASSERT(sizeof(struct cs_header) == 16, "cs_header layout");
CS_STATIC_ASSERT(sizeof(struct cs_process) == 72, "cs_process layout");
CS_STATIC_ASSERT(sizeof(struct cs_connect_record) == 240, "cs_connect_record layout");
CS_STATIC_ASSERT(sizeof(struct cs_outcome) == 80, "cs_outcome layout");
CS_STATIC_ASSERT(sizeof(struct cs_outcome_record) == 96, "cs_outcome_record layout");
CS_STATIC_ASSERT(sizeof(struct cs_dns_record) == 80, "cs_dns_record layout");

#endif
