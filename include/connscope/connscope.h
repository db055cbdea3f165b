/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/**
 * @file connscope.h
 * @brief The C ABI: watch every connect() on the host from C or any language with a C FFI.
 *
 * A thin, ABI-stable translation of the C++ API (connscope::Session).
 *
 * Conventions:
 * - Functions return 0 (or a count) on success and a negative errno value, or
 *   a negated CONNSCOPE_E* code (4000 and up), on failure. The full message of
 *   the last failure on the calling thread is connscope_last_error();
 *   connscope_strerror() names any code.
 * - Option and output structs start with `size_t sz`, which the caller sets
 *   to `sizeof` the struct it was compiled with. Fields are only ever
 *   appended; `<struct>__last_field` names the last field of each. The
 *   library reads (or writes) a field only when sz covers it, and rejects
 *   with -EINVAL non-zero bytes past the fields it knows, so a program built
 *   against newer headers fails loudly on an older library instead of
 *   silently losing a setting. Zero means "default" for every option field.
 * - Event structs, and the process and address structs they point to, start
 *   with `uint32_t size`, the number of bytes the library filled; check it
 *   before reading a field added after 0.2. No struct is nested by value in
 *   another, so each can grow. They and every string they point to are
 *   valid only during the callback.
 * - Handles are opaque; free functions accept NULL.
 *
 * @code
 * static int on_connect(const struct connscope_connect_event *ev, void *ctx)
 * {
 *     printf("%u %s -> %s\n", ev->process->pid, ev->process->comm, ev->remote_addr->text);
 *     return 0;
 * }
 *
 * struct connscope_callbacks cb = { .sz = sizeof(cb), .on_connect = on_connect };
 * connscope_session *s;
 * int err = connscope_session_new(NULL, &cb, &s);
 * if (err < 0) {
 *     fprintf(stderr, "%s\n", connscope_last_error());
 *     return 1;
 * }
 * while (connscope_session_poll(s, 100) >= 0)
 *     ;
 * connscope_session_free(s);
 * @endcode
 */
#ifndef CONNSCOPE_H
#define CONNSCOPE_H

#include <connscope/export.h>
#include <connscope/version.h>

#include <stddef.h>
#include <stdint.h>

/**
 * Marks the C functions as non-throwing for C++ callers (they never throw:
 * every failure is a return code). Empty in C.
 */
#ifdef __cplusplus
#define CONNSCOPE_NOEXCEPT noexcept
#else
#define CONNSCOPE_NOEXCEPT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup connscope_errors Error codes
 * Project error codes. Functions return them negated (-CONNSCOPE_EBACKEND);
 * values below 4000 are errno values (EINVAL, EPERM, ENOMEM, ...).
 * They mirror connscope::Errc.
 * @{
 */
/** No requested backend can run on this kernel; connscope_last_error() gives each one's reason. */
#define CONNSCOPE_EBACKEND 4000
/** No cgroup v2 hierarchy is mounted. */
#define CONNSCOPE_ENOCGROUP2 4001
/** The kernel has no BTF (/sys/kernel/btf/vmlinux). */
#define CONNSCOPE_ENOBTF 4002
/** The session holds nothing (internal state was moved away). */
#define CONNSCOPE_EMOVED 4003
/** A user callback failed. */
#define CONNSCOPE_ECALLBACK 4004
/** A bug in connscope; please report it with connscope_last_error(). */
#define CONNSCOPE_EINTERNAL 4005
/** The programs are attached, but the session's own canary connect did not come back through the ring. */
#define CONNSCOPE_ENOTFIRING 4006
/**
 * Only a subtree of the cgroup v2 hierarchy is reachable (a cgroup namespace
 * of the process's own) and connscope_opts::cgroup_root does not ask for one.
 */
#define CONNSCOPE_ECGROUPSUBTREE 4007
/** @} */

/**
 * @defgroup connscope_dns_modes DNS modes
 * Values of connscope_opts::dns_mode.
 * @{
 */
/** The library default: DNS capture and correlation on. */
#define CONNSCOPE_DNS_DEFAULT 0
/** Capture DNS answers and fill connscope_tcp_connect_event::results. */
#define CONNSCOPE_DNS_ON 1
/** No DNS capture; results are always empty. */
#define CONNSCOPE_DNS_OFF 2
/** @} */

/**
 * @defgroup connscope_addr_kinds Address kinds
 * Values of connscope_address::kind and connscope_address::unix_kind.
 * @{
 */
/** An AF_INET or AF_INET6 address: ip, ip_text, port, flowinfo, scope_id are set. */
#define CONNSCOPE_ADDR_INET 1
/** An AF_UNIX address: unix_kind, unix_name, unix_name_len are set. */
#define CONNSCOPE_ADDR_UNIX 2
/** An address the library did not decode: only family and addrlen are set. */
#define CONNSCOPE_ADDR_UNKNOWN 3

/** A UNIX address naming a filesystem path. */
#define CONNSCOPE_UNIX_PATH 1
/** A UNIX abstract name (its leading NUL is not part of unix_name). */
#define CONNSCOPE_UNIX_ABSTRACT 2
/** An unnamed UNIX address. */
#define CONNSCOPE_UNIX_UNNAMED 3
/** @} */

/**
 * @defgroup connscope_self Own connects
 * Values of connscope_filters::exclude_self.
 * @{
 */
/** The library default: leave out connects made by the process that owns the session. */
#define CONNSCOPE_SELF_DEFAULT 0
/** Leave out connects made by the process that owns the session. */
#define CONNSCOPE_SELF_EXCLUDE 1
/** Report the session owner's own connects like any other process's. */
#define CONNSCOPE_SELF_INCLUDE 2
/** @} */

/**
 * @defgroup connscope_log_levels Log levels
 * Values of connscope_opts::log_level and of the level a connscope_log_fn
 * receives (connscope::LogLevel).
 * @{
 */
/** Something failed that the caller should know of. */
#define CONNSCOPE_LOG_ERROR 1
/** A capability is missing or degraded (a backend refused, DNS capture off). The default. */
#define CONNSCOPE_LOG_WARNING 2
/** What was chosen and why; each backend's verdict while probing. */
#define CONNSCOPE_LOG_INFO 3
/** libbpf's and the kernel's own detail (verifier logs). */
#define CONNSCOPE_LOG_DEBUG 4
/** @} */

/**
 * Receives one diagnostic line (no newline), on the thread that called into
 * the library, while that call runs. libbpf's messages about the library's
 * own BPF objects come here too; those about a program's own libbpf use do not.
 * @param level CONNSCOPE_LOG_ERROR to CONNSCOPE_LOG_DEBUG.
 * @param message the text, valid only during the call.
 * @param ctx connscope_opts::log_ctx.
 */
typedef void (*connscope_log_fn)(int level, const char *message, void *ctx);

/**
 * @defgroup connscope_health Health event kinds
 * Values of connscope_health_event::kind (connscope::HealthKind).
 * @{
 */
/** A canary connect of the session's own did not come back through the ring within the interval. */
#define CONNSCOPE_HEALTH_CANARY_MISSED 1
/** A link the session owns is no longer attached (another process detached it). */
#define CONNSCOPE_HEALTH_LINK_DETACHED 2
/** The session attached its programs again after one of the above. */
#define CONNSCOPE_HEALTH_REATTACHED 3
/** Attaching again failed; the message says why. The session tries again at the next interval. */
#define CONNSCOPE_HEALTH_REATTACH_FAILED 4
/** @} */

/** connscope_opts::liveness_interval_ms value that turns the liveness check off. */
#define CONNSCOPE_LIVENESS_OFF UINT32_MAX

/**
 * The session's watch over its own hooks (connscope::HealthEvent). Strings
 * are valid only during the callback.
 */
struct connscope_health_event {
    size_t sz;              /**< sizeof(struct connscope_health_event) as the library was compiled. */
    int kind;               /**< CONNSCOPE_HEALTH_*. */
    const char *kind_name;  /**< "canary_missed", "link_detached", "reattached" or "reattach_failed". */
    const char *what;       /**< The canary or the link it concerns. */
    const char *message;    /**< What went missing, since when, and what the session did about it. */
    uint64_t timestamp_ns;  /**< When it was found, ns since the Unix epoch. */
    uint64_t sequence;      /**< As connscope_connect_event::sequence (since 0.4). */
};
/** The last field of struct connscope_health_event in this version. */
#define connscope_health_event__last_field sequence

/**
 * Receives a health event, on the thread that polls, during poll or consume.
 * @param event read the fields its sz covers.
 * @param ctx connscope_opts::health_ctx.
 */
typedef void (*connscope_health_fn)(const struct connscope_health_event *event, void *ctx);

/** Length of connscope_process::comm, including the terminating NUL. */
#define CONNSCOPE_COMM_LEN 16
/** Size of the text buffers for IP addresses (an RFC 5952 IPv6 text and its NUL fit). */
#define CONNSCOPE_IP_TEXT_LEN 48
/**
 * Length of connscope_process::container_id: a container id's 64 lowercase
 * hex digits and the terminating NUL.
 */
#define CONNSCOPE_CONTAINER_ID_LEN 65

/**
 * A session: BPF programs attached to the kernel and the ring buffer they
 * fill. Opaque; made by connscope_session_new(), freed by connscope_session_free().
 */
typedef struct connscope_session connscope_session;

/** An inclusive range of remote ports, host byte order (connscope::PortRange). */
struct connscope_port_range {
    uint16_t first; /**< Lowest port in the range. */
    uint16_t last;  /**< Highest port in the range (>= first). */
};

/**
 * Which connects to report (connscope::Filters), judged in the kernel before
 * any ring space is used. Given to connscope_session_new() through
 * connscope_opts::filters and to connscope_session_set_filters().
 *
 * Zero-initialise, set sz = sizeof(struct connscope_filters), then fill the
 * lists you need. Each list is a pointer and a count; a count of 0 (with a
 * NULL pointer) means "any". A connect is reported when it matches every
 * non-empty list, and within a list any one entry. A non-NULL list with a
 * count of 0, or a count with a NULL list, is -EINVAL. DNS capture is not
 * filtered. Every list is copied; the caller keeps its memory.
 *
 * The sz rules of connscope_opts apply: fields are only appended, the library
 * reads only what sz covers and refuses non-zero bytes past what it knows.
 */
struct connscope_filters {
    /** sizeof(struct connscope_filters) as the caller was compiled. */
    size_t sz;
    /**
     * CONNSCOPE_SELF_DEFAULT (0) or CONNSCOPE_SELF_EXCLUDE: connects made by
     * the process that owns the session are left out; CONNSCOPE_SELF_INCLUDE:
     * they are reported. Other values are -EINVAL.
     */
    int exclude_self;
    /** Process ids (tgid, initial PID namespace), at most 4096. */
    const uint32_t *pids;
    size_t pid_count;              /**< Number of entries in pids. */
    /** Real user ids (initial user namespace), at most 4096. */
    const uint32_t *uids;
    size_t uid_count;              /**< Number of entries in uids. */
    /** Thread names (comm), NUL-terminated, 1 to 15 bytes each, at most 4096. */
    const char *const *comms;
    size_t comm_count;             /**< Number of entries in comms. */
    /**
     * cgroup v2 directories, absolute or relative to the cgroup v2 mount; a
     * connect from that cgroup or any cgroup below it matches. At most 4096;
     * a path that does not exist is -ENOENT.
     */
    const char *const *cgroups;
    size_t cgroup_count;           /**< Number of entries in cgroups. */
    /** Address families: AF_INET (2), AF_INET6 (10), AF_UNIX (1); others are -EINVAL. */
    const uint16_t *families;
    size_t family_count;           /**< Number of entries in families. */
    /** Remote port ranges, at most 16. Connects without a port (AF_UNIX) never match. */
    const struct connscope_port_range *ports;
    size_t port_count;             /**< Number of entries in ports. */
};
/** The last field of struct connscope_filters in this version. */
#define connscope_filters__last_field port_count

/**
 * How a session is set up. Zero-initialise, set sz = sizeof(struct connscope_opts),
 * then set what you need; every zero field takes the library default.
 */
struct connscope_opts {
    /** sizeof(struct connscope_opts) as the caller was compiled. */
    size_t sz;
    /**
     * Backends to try, in order: "auto" (fentry, lsm, kprobe, cgroup,
     * tracepoint) or a comma-separated list of those names. NULL or "" means "auto".
     */
    const char *backends;
    /** Ring buffer size in bytes: a power of two and a multiple of the page size. 0: 4 MiB. */
    size_t ring_size;
    /** Longest time an event waits in the ring before poll returns it, 1 to 10000 ms. 0: 10 ms. */
    uint32_t max_latency_ms;
    /** CONNSCOPE_DNS_DEFAULT (0, on), CONNSCOPE_DNS_ON or CONNSCOPE_DNS_OFF; other values are -EINVAL. */
    int dns_mode;
    /** Source ports DNS answers are taken from (UDP and TCP), host byte order. NULL: port 53. */
    const uint16_t *dns_ports;
    /** Number of entries in dns_ports, 1 to 16; 0 means the default (port 53). */
    size_t dns_port_count;
    /** Most DNS payload bytes copied per packet, 64 to 8192. 0: 1500. */
    uint32_t dns_payload_max;
    /** Seconds a DNS name stays valid beyond its TTL (at least the grace). 0: 60. */
    uint32_t dns_cache_grace_s;
    /**
     * Most (namespace, address, name) entries the DNS cache holds. 0: 1048576.
     * A bound of 32 MiB on the cache's bytes applies as well; the Session's own
     * network namespace keeps a reserve no other namespace can take.
     */
    size_t dns_cache_max_entries;
    /**
     * Which connects to report. NULL: every connect but the session owner's
     * own. Change them later with connscope_session_set_filters().
     */
    const struct connscope_filters *filters;
    /** Diagnostics; NULL (the default) keeps the library silent. */
    connscope_log_fn log;
    /** Passed to log as is. */
    void *log_ctx;
    /** The most detailed level given to log: CONNSCOPE_LOG_*. 0: CONNSCOPE_LOG_WARNING. */
    int log_level;
    /**
     * connscope_session_new() returns only after a connect of the session's
     * own (one per address family, to a loopback port, never delivered) came
     * back through the ring; it waits at most this long, 100 to 60000 ms,
     * then fails with -CONNSCOPE_ENOTFIRING. 0: 5000 ms.
     */
    uint32_t startup_timeout_ms;
    /**
     * While running, the same canary every interval and a check that every
     * link is still attached; what goes missing is given to health, counted
     * in connscope_stats and attached again. 1000 to 3600000 ms and more than
     * max_latency_ms; 0: 10000 ms; CONNSCOPE_LIVENESS_OFF: off.
     */
    uint32_t liveness_interval_ms;
    /** Health events; NULL: they only reach log, as warnings. */
    connscope_health_fn health;
    /** Passed to health as is. */
    void *health_ctx;
    /**
     * The cgroup v2 directory the cgroup programs (the cgroup backend, the
     * DNS capture) attach to (connscope::Options::cgroup_root). NULL or "":
     * the hierarchy's root, found at a mount, through /proc/1/root, or by a
     * private mount on a cgroup v1-only host; the session fails with
     * -CONNSCOPE_ECGROUPSUBTREE when only a subtree is reachable. A path:
     * watch that subtree on purpose (since 0.4).
     */
    const char *cgroup_root;
    /**
     * CONNSCOPE_OUTCOMES_DEFAULT (0, on), CONNSCOPE_OUTCOMES_ON or
     * CONNSCOPE_OUTCOMES_OFF: follow each connect to its outcome
     * (connscope_callbacks::on_outcome) and report the connect(2)s an LSM
     * refused before the backend's hook (since 0.4).
     */
    int outcomes_mode;
};
/** The last field of struct connscope_opts in this version. */
#define connscope_opts__last_field outcomes_mode

/** connscope_opts::outcomes_mode: the default (on). */
#define CONNSCOPE_OUTCOMES_DEFAULT 0
/** connscope_opts::outcomes_mode: on. */
#define CONNSCOPE_OUTCOMES_ON 1
/** connscope_opts::outcomes_mode: off. */
#define CONNSCOPE_OUTCOMES_OFF 2

/**
 * Who made a connect and when, read in the kernel from the calling task.
 * Reached through a pointer (connscope_connect_event::process), so it can grow.
 */
struct connscope_process {
    uint32_t size;         /**< Bytes of this struct the library filled. */
    uint64_t timestamp_ns; /**< When the hook ran, ns since the Unix epoch. */
    uint64_t cgroup_id;    /**< cgroup v2 id: the inode number of the cgroup's directory. */
    uint32_t pid;          /**< Process id (tgid) in the initial PID namespace. */
    uint32_t tid;          /**< Thread id. */
    uint32_t ppid;         /**< The real parent's process id. */
    uint32_t uid;          /**< Real user id (initial user namespace). */
    uint32_t gid;          /**< Real group id (initial user namespace). */
    uint32_t mnt_ns;       /**< Mount namespace inode (0 when not known). */
    uint32_t net_ns;       /**< Network namespace inode. */
    uint32_t pid_ns;       /**< PID namespace inode. */
    uint32_t user_ns;      /**< User namespace inode. */
    uint32_t uts_ns;       /**< UTS namespace inode. */
    uint32_t ipc_ns;       /**< IPC namespace inode. */
    uint32_t cgroup_ns;    /**< Cgroup namespace inode. */
    char comm[CONNSCOPE_COMM_LEN]; /**< The thread's comm, NUL-terminated. */
    /**
     * The id of the container the process ran in (64 lowercase hex digits),
     * NUL-terminated; "" when its cgroup is no container's or could not be
     * found (since 0.4; present when size covers it).
     *
     * Resolved in user space, when the event is decoded, from the path of the
     * cgroup cgroup_id (taken at connect time) names: Docker, containerd's
     * CRI, CRI-O and Podman cgroups, with the systemd and the cgroupfs
     * drivers, Kubernetes pods included (connscope::ProcessContext::container_id
     * lists the layouts). "" when that cgroup was removed before the event was
     * decoded, or was made after the session's last walk of the cgroup
     * hierarchy and the event is decoded less than 250 ms after that walk (an
     * unknown cgroup id makes it walk again, at most once per 250 ms); at most
     * 16384 cgroups are remembered.
     */
    char container_id[CONNSCOPE_CONTAINER_ID_LEN];
};
/** The last field of struct connscope_process in this version. */
#define connscope_process__last_field container_id

/**
 * The remote address of a connect. kind says which fields are meaningful.
 * Reached through a pointer (connscope_connect_event::remote_addr), so it can grow.
 */
struct connscope_address {
    uint32_t size;         /**< Bytes of this struct the library filled. */
    int32_t kind;          /**< CONNSCOPE_ADDR_INET, CONNSCOPE_ADDR_UNIX or CONNSCOPE_ADDR_UNKNOWN. */
    uint16_t family;       /**< AF_INET, AF_INET6, AF_UNIX, or the raw sa_family of an unknown address. */
    uint16_t port;         /**< INET: port, host byte order. */
    uint32_t flowinfo;     /**< INET6: flow information, host order. */
    uint32_t scope_id;     /**< INET6: scope (interface index). */
    uint8_t ip[16];        /**< INET: network byte order; IPv4 uses the first 4 bytes. */
    char ip_text[CONNSCOPE_IP_TEXT_LEN]; /**< INET: dotted quad or RFC 5952 text, NUL-terminated. */
    int32_t unix_kind;     /**< UNIX: CONNSCOPE_UNIX_PATH, _ABSTRACT or _UNNAMED. */
    uint32_t addrlen;      /**< UNKNOWN: addrlen as the caller passed it. */
    /**
     * UNIX: the path, or the abstract name without its leading NUL: raw bytes
     * that may contain NUL, unix_name_len long, followed by a NUL. "" when unnamed.
     */
    const char *unix_name;
    size_t unix_name_len;  /**< UNIX: length of unix_name in bytes. */
    /** "AF_INET", "AF_INET6", "AF_UNIX", "AF_UNSPEC" or "AF_<number>". */
    const char *family_name;
    /** Human-readable form: "127.0.0.1:80", "[::1]:80", "/run/x.sock", "@name", "(unnamed)". */
    const char *text;
};
/** The last field of struct connscope_address in this version. */
#define connscope_address__last_field text

/**
 * @defgroup connscope_via Connect paths
 * The path by which a process asked for a connect (connscope::ConnectVia);
 * docs/guide.md, "Connect paths".
 * @{
 */
/** Not asked for by a system call or io_uring request the library knows: a connect the kernel made itself. */
#define CONNSCOPE_VIA_UNKNOWN 0
/** connect(2), a 32-bit connect or socketcall included, and TCP_FASTOPEN_CONNECT's connect. */
#define CONNSCOPE_VIA_CONNECT 1
/** sendto(2), sendmsg(2) or sendmmsg(2) with MSG_FASTOPEN: TCP Fast Open. */
#define CONNSCOPE_VIA_FASTOPEN 2
/** An io_uring request: IORING_OP_CONNECT, or a send with MSG_FASTOPEN. */
#define CONNSCOPE_VIA_IO_URING 3
/** @} */

/** Every connect attempt (connscope::SecuritySocketConnect). Valid only during the callback. */
struct connscope_connect_event {
    uint32_t size;         /**< Bytes of this struct the library filled. */
    /** The socket's fd, as passed to connect(2) or the Fast Open send; -1 for io_uring, socketcall. */
    int32_t sockfd;
    const struct connscope_process *process; /**< The calling process (never NULL). */
    int32_t type;          /**< Socket type: SOCK_STREAM, SOCK_DGRAM, ... (0 when not known). */
    /** 1 when the address was read from the caller's memory (tracepoint backend) and may differ from what the kernel used. */
    int32_t toctou;
    const char *type_name; /**< "SOCK_STREAM", "SOCK_DGRAM", ..., or "SOCK_<number>". */
    const struct connscope_address *remote_addr; /**< The address connected to (never NULL). */
    int32_t via;           /**< The path the connect came by: CONNSCOPE_VIA_* (since 0.3). */
    /** "unknown", "connect", "fastopen" or "io_uring" (since 0.3). */
    const char *via_name;
    /** Joins this attempt with its tcp_connect and outcome events; never 0 (since 0.4). */
    uint64_t connect_id;
    /** The session's number for this event: one more than the event before it (since 0.4). */
    uint64_t sequence;
    /**
     * 1 when an LSM ahead of the backend's hook refused the connect and it
     * was reported when connect(2) returned, from the caller's arguments
     * (toctou is then 1 as well) (since 0.4).
     */
    int32_t late;
};
/** The last field of struct connscope_connect_event in this version. */
#define connscope_connect_event__last_field late

/**
 * A TCP connect over IPv4/IPv6 (connscope::NetTcpConnect), delivered right
 * after its connscope_connect_event. Valid only during the callback.
 */
struct connscope_tcp_connect_event {
    uint32_t size;         /**< Bytes of this struct the library filled. */
    int32_t sockfd;        /**< As connscope_connect_event::sockfd. */
    const struct connscope_process *process; /**< The calling process (never NULL). */
    char dst_ip[CONNSCOPE_IP_TEXT_LEN]; /**< Dotted quad or RFC 5952 IPv6, NUL-terminated. */
    uint16_t dst_port;     /**< Destination port, host byte order. */
    /**
     * The DNS names that resolved to dst_ip, most relevant first: result_count
     * entries followed by a NULL (never NULL itself).
     */
    const char *const *results;
    size_t result_count;   /**< Number of entries in results (0 when no name is known). */
    int32_t via;           /**< As connscope_connect_event::via (since 0.3). */
    const char *via_name;  /**< As connscope_connect_event::via_name (since 0.3). */
    uint64_t connect_id;   /**< As connscope_connect_event::connect_id (since 0.4). */
    uint64_t sequence;     /**< This event's own number, as connscope_connect_event::sequence (since 0.4). */
};
/** The last field of struct connscope_tcp_connect_event in this version. */
#define connscope_tcp_connect_event__last_field sequence

/** connscope_outcome_event::lsm: not known on this backend (connscope::LsmVerdict). */
#define CONNSCOPE_LSM_UNKNOWN 0
/** connscope_outcome_event::lsm: every LSM allowed the connect. */
#define CONNSCOPE_LSM_ALLOWED 1
/** connscope_outcome_event::lsm: an LSM refused it (lsm_error says with what). */
#define CONNSCOPE_LSM_DENIED 2

/** connscope_outcome_event::tcp: no handshake (not TCP, or failed before it began) (connscope::TcpResult). */
#define CONNSCOPE_TCP_NONE 0
/** connscope_outcome_event::tcp: the handshake completed. */
#define CONNSCOPE_TCP_ESTABLISHED 1
/** connscope_outcome_event::tcp: the peer answered with a reset. */
#define CONNSCOPE_TCP_REFUSED 2
/** connscope_outcome_event::tcp: no answer within the SYN retries. */
#define CONNSCOPE_TCP_TIMED_OUT 3
/** connscope_outcome_event::tcp: an ICMP error (host or network unreachable, ...). */
#define CONNSCOPE_TCP_UNREACHABLE 4
/** connscope_outcome_event::tcp: ended without an answer otherwise (closed, or failed). */
#define CONNSCOPE_TCP_CLOSED 5

/**
 * What became of a connect (connscope::ConnectOutcome), after its
 * connscope_connect_event. Valid only during the callback (since 0.4).
 */
struct connscope_outcome_event {
    uint32_t size;         /**< Bytes of this struct the library filled. */
    uint32_t pid;          /**< The connecting process (initial PID namespace). */
    uint64_t connect_id;   /**< The connscope_connect_event's. */
    uint64_t sequence;     /**< As connscope_connect_event::sequence. */
    uint64_t timestamp_ns; /**< When the outcome was known, ns since the Unix epoch. */
    uint64_t duration_ns;  /**< From the attempt to the handshake's end (TCP) or the return. */
    uint32_t tid;          /**< The connecting thread. */
    int32_t via;           /**< CONNSCOPE_VIA_*. */
    const char *via_name;  /**< "unknown", "connect", "fastopen" or "io_uring". */
    int32_t result_known;  /**< 1 when result holds the system call's return (not for io_uring). */
    int32_t result;        /**< 0, the bytes a Fast Open send queued, or -errno (-EINPROGRESS). */
    int32_t lsm;           /**< CONNSCOPE_LSM_*. */
    int32_t lsm_error;     /**< When denied: the errno the LSM gave. */
    const char *lsm_name;  /**< "unknown", "allowed" or "denied". */
    int32_t tcp;           /**< CONNSCOPE_TCP_*. */
    int32_t tcp_error;     /**< The socket's errno when the handshake ended (0: none). */
    const char *tcp_name;  /**< "none", "established", "refused", "timed_out", "unreachable" or "closed". */
    /** "established", "refused", "timed_out", "unreachable", "closed", "denied", "connected", "failed", "unknown". */
    const char *outcome_name;
    /**
     * The address and port the kernel bound the socket to; NULL when there is
     * none: UNIX sockets, and connects that failed before the kernel chose one.
     */
    const struct connscope_address *local_addr;
    uint64_t socket_cookie; /**< The socket's cookie (SO_COOKIE); 0 when the kernel gave it none yet. */
};
/** The last field of struct connscope_outcome_event in this version. */
#define connscope_outcome_event__last_field socket_cookie

/**
 * Called for each connect attempt.
 * @param ev the event, valid only during the call.
 * @param ctx connscope_callbacks::ctx.
 * @return 0 to go on; a negative value stops the current poll, which returns it.
 */
typedef int (*connscope_connect_fn)(const struct connscope_connect_event *ev, void *ctx);

/**
 * Called for each TCP connect over IPv4/IPv6.
 * @param ev the event, valid only during the call.
 * @param ctx connscope_callbacks::ctx.
 * @return 0 to go on; a negative value stops the current poll, which returns it.
 */
typedef int (*connscope_tcp_connect_fn)(const struct connscope_tcp_connect_event *ev, void *ctx);

/**
 * Called with what became of each connect (since 0.4).
 * @param ev the event, valid only during the call.
 * @param ctx connscope_callbacks::ctx.
 * @return 0 to go on; a negative value stops the current poll, which returns it.
 */
typedef int (*connscope_outcome_fn)(const struct connscope_outcome_event *ev, void *ctx);

/** The functions a session calls, on the thread that polls. Zero-initialise and set sz. */
struct connscope_callbacks {
    /** sizeof(struct connscope_callbacks) as the caller was compiled. */
    size_t sz;
    /** Passed to every callback as is. */
    void *ctx;
    /** Every connect attempt; NULL to ignore them. */
    connscope_connect_fn on_connect;
    /** Every TCP connect over IPv4/IPv6, with DNS names; NULL to ignore them. */
    connscope_tcp_connect_fn on_tcp_connect;
    /** What became of each connect; NULL to ignore them (since 0.4). */
    connscope_outcome_fn on_outcome;
};
/** The last field of struct connscope_callbacks in this version. */
#define connscope_callbacks__last_field on_outcome

/**
 * Counters since the session started (connscope::Stats), each in one unit.
 * For ring records produced = delivered + lost holds exactly, with
 * lost = lost_ring_connect + lost_ring_dns + lost_ring_outcome + decode_errors. Set sz before
 * calling connscope_session_stats().
 */
struct connscope_stats {
    size_t sz;                     /**< sizeof(struct connscope_stats) as the caller was compiled. */
    uint64_t events;               /**< Connect events delivered. */
    uint64_t tcp_events;           /**< TCP connect events delivered. */
    uint64_t dns_messages;         /**< DNS answers parsed and given to the correlator. */
    uint64_t lost;                 /**< Ring records lost: lost_ring_connect + lost_ring_dns + lost_ring_outcome + decode_errors. */
    uint64_t lost_ring_connect;    /**< Connect records dropped in the kernel: the ring was full. */
    uint64_t lost_ring_dns;        /**< DNS records dropped in the kernel: the ring was full, or past its DNS limit (dns_dropped_reserve). */
    uint64_t decode_errors;        /**< Ring records delivered that the decoder could not read. */
    uint64_t dns_truncated;        /**< DNS records whose payload was longer than dns_payload_max. */
    uint64_t dns_malformed;        /**< DNS messages the parser rejected. */
    uint64_t dns_tcp_dropped_bytes; /**< DNS-over-TCP bytes dropped (out of order or over the bound). */
    uint64_t dns_names_evicted;    /**< Names the DNS cache evicted to stay in bounds. */
    uint64_t callback_errors;      /**< Callbacks that failed; their events count as delivered. */
    uint64_t canaries_sent;        /**< Canary connects made (one per family per round). */
    uint64_t canaries_missed;      /**< Canary connects that did not come back within the interval. */
    uint64_t links_detached;       /**< Times a link of the session's was found detached. */
    uint64_t reattachments;        /**< Times the session attached its programs again. */
    /**
     * Nanoseconds the session was not sure it was watching: from the last
     * liveness check that passed to the re-attach after a failed one.
     */
    uint64_t unwatched_ns;
    uint64_t outcomes;             /**< Outcome events delivered (since 0.4). */
    /** Outcomes dropped in the kernel: the ring was full, or too many handshakes at once (since 0.4). */
    uint64_t lost_ring_outcome;
    /** Of lost_ring_dns, DNS records dropped because the ring was more than half full (kept for connect records). */
    uint64_t dns_dropped_reserve;
    uint64_t dns_evicted_budget;   /**< Names a budget group over its share evicted from itself. */
    uint64_t dns_evicted_global;   /**< Names evicted because the DNS cache or its non-host pool was full. */
    uint64_t dns_expired;          /**< Names removed because they expired (not in dns_names_evicted). */
    uint64_t dns_cache_entries;    /**< Names the DNS cache holds now. */
    uint64_t dns_cache_bytes;      /**< Bytes charged for the names held now; at most dns_cache_bytes_max. */
    uint64_t dns_cache_bytes_max;  /**< The default DNS cache's memory bound in bytes; 0 with a correlator of your own. */
    uint64_t dns_cache_bytes_allocated; /**< Memory the DNS cache has allocated now, slack included. */
    uint64_t dns_cache_budget_groups;   /**< Budget groups holding names now, the host's included. */
};
/** The last field of struct connscope_stats in this version. */
#define connscope_stats__last_field dns_cache_budget_groups

/**
 * Which backend a session uses and why (connscope::BackendInfo). Set sz
 * before calling connscope_session_backend(). Every string is owned by the
 * session and valid until connscope_session_free().
 */
struct connscope_backend_info {
    size_t sz;                 /**< sizeof(struct connscope_backend_info) as the caller was compiled. */
    const char *name;          /**< The backend in use: "lsm", "fentry", "kprobe", "cgroup" or "tracepoint". */
    const char *reason;        /**< Why it was chosen (and why those before it were not). */
    const char *dns;           /**< Whether DNS capture runs, and why not when it does not. */
    const char *const *gaps;   /**< What this backend cannot see on this kernel; gap_count entries. */
    size_t gap_count;          /**< Number of entries in gaps. */
    size_t tried_count;        /**< Backends tried; read each with connscope_session_backend_tried(). */
    /** The directory the cgroup programs are attached to, "(private mount)", or "" (since 0.4). */
    const char *cgroup_root;
    /** What they watch and how it was found (connscope::BackendInfo::cgroup_scope) (since 0.4). */
    const char *cgroup_scope;
};
/** The last field of struct connscope_backend_info in this version. */
#define connscope_backend_info__last_field cgroup_scope

/** The verdict on one backend (connscope::BackendStatus). Set sz before the call. */
struct connscope_backend_status {
    size_t sz;          /**< sizeof(struct connscope_backend_status) as the caller was compiled. */
    const char *name;   /**< The backend's name. */
    int available;      /**< 1 when it loaded and attached, else 0. */
    /** "" when available; else the failing step, the errno and its meaning, and the remedy. */
    const char *reason;
};
/** The last field of struct connscope_backend_status in this version. */
#define connscope_backend_status__last_field reason

/**
 * The version of the library loaded at run time ("MAJOR.MINOR.PATCH").
 *
 * Compare with CONNSCOPE_VERSION_STRING, the version of the headers.
 * @return a static string.
 * @par Thread safety
 * Safe from any thread.
 * @par Ownership
 * Static; do not free.
 */
CONNSCOPE_API const char *connscope_version(void) CONNSCOPE_NOEXCEPT;

/**
 * A short description of an error code.
 * @param code an error as returned by a function (negative) or its absolute value.
 * @return "Operation not permitted", "no usable backend", ...; "Unknown error N" for unknown codes.
 * @par Thread safety
 * Safe from any thread.
 * @par Ownership
 * Static; do not free.
 */
CONNSCOPE_API const char *connscope_strerror(int code) CONNSCOPE_NOEXCEPT;

/**
 * The full message of the last failure on the calling thread: what failed,
 * why, and what to do.
 * @return the message; "" when no call has failed on this thread. Successful
 *   calls leave it unchanged.
 * @par Thread safety
 * Per thread: each thread sees its own last failure.
 * @par Ownership
 * Owned by the library; valid until the next failing call on this thread.
 */
CONNSCOPE_API const char *connscope_last_error(void) CONNSCOPE_NOEXCEPT;

/**
 * Probes the backends, loads and attaches the first that works, and makes a session.
 *
 * Needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (or root).
 * @param opts settings, or NULL for every default.
 * @param callbacks what to call for events, or NULL to only count them.
 * @param out receives the session; set to NULL on failure.
 * @return 0, or a negative code:
 *   -EINVAL for a bad option, a NULL out, a too small sz or unknown non-zero
 *   bytes past the fields this library knows (connscope_last_error() names
 *   the field and the valid values);
 *   -EPERM when privileges are missing;
 *   -CONNSCOPE_EBACKEND when no requested backend works;
 *   -CONNSCOPE_ENOCGROUP2, -CONNSCOPE_ECGROUPSUBTREE, -CONNSCOPE_ENOBTF, -ENOMEM, other negative errno values.
 * @par Thread safety
 * Safe from any thread; sessions are independent.
 * @par Ownership
 * opts and callbacks are copied (dns_ports and opts->filters with its lists
 * too); the caller keeps them. The
 * session belongs to the caller, who frees it with connscope_session_free().
 */
CONNSCOPE_API int connscope_session_new(const struct connscope_opts *opts,
                                        const struct connscope_callbacks *callbacks,
                                        connscope_session **out) CONNSCOPE_NOEXCEPT;

/**
 * Detaches every BPF program and frees the session.
 * @param s the session, or NULL (then nothing happens).
 * @par Thread safety
 * Not while another thread uses s, and not from one of its callbacks.
 * @par Ownership
 * s is invalid afterwards, and so is every string it handed out.
 */
CONNSCOPE_API void connscope_session_free(connscope_session *s) CONNSCOPE_NOEXCEPT;

/**
 * Waits up to timeout_ms for events and delivers them to the callbacks.
 * @param s the session.
 * @param timeout_ms how long to wait, in milliseconds; 0 returns at once, negative waits without end.
 * @return the number of ring records handled (0 on timeout or EINTR); the
 *   negative value a callback returned, which stopped the poll; -EINVAL for a
 *   NULL s; another negative errno on a system failure.
 * @par Thread safety
 * One thread at a time per session; the callbacks run on the calling thread.
 * @par Ownership
 * Event structs and their strings are valid only during each callback.
 */
CONNSCOPE_API int connscope_session_poll(connscope_session *s, int timeout_ms) CONNSCOPE_NOEXCEPT;

/**
 * Delivers what the ring holds now, without waiting.
 * @param s the session.
 * @return as connscope_session_poll().
 * @par Thread safety
 * As connscope_session_poll().
 * @par Ownership
 * As connscope_session_poll().
 */
CONNSCOPE_API int connscope_session_consume(connscope_session *s) CONNSCOPE_NOEXCEPT;

/**
 * A file descriptor (epoll) that becomes readable when events wait: when the
 * ring passes its fill mark, or max_latency_ms after the last poll. Put it in
 * your own event loop and call connscope_session_consume() when it is readable.
 * @param s the session.
 * @return the fd (>= 0), or -EINVAL for a NULL s.
 * @par Thread safety
 * As connscope_session_poll().
 * @par Ownership
 * The session owns the fd: do not close it; it is closed by connscope_session_free().
 */
CONNSCOPE_API int connscope_session_fd(const connscope_session *s) CONNSCOPE_NOEXCEPT;

/**
 * Reads the counters.
 * @param s the session.
 * @param out set out->sz = sizeof(*out) first. The library fills the fields
 *   sz covers and zeroes those it does not know.
 * @return 0; -EINVAL for a NULL s or out, or sz smaller than sizeof(size_t).
 * @par Thread safety
 * As connscope_session_poll().
 * @par Ownership
 * out belongs to the caller.
 */
CONNSCOPE_API int connscope_session_stats(const connscope_session *s, struct connscope_stats *out) CONNSCOPE_NOEXCEPT;

/**
 * Replaces the filters of a running session (map updates, no reload).
 *
 * The new set replaces the whole old one: a list left empty means "any",
 * whatever it was before. Connects made while the update is under way may be
 * judged by either set. On failure the old filters stay in force.
 * @param s the session.
 * @param filters the new filters, or NULL for the defaults (every connect but
 *   the session owner's own).
 * @return 0, or a negative code: -EINVAL for a NULL s, a too small sz, unknown
 *   non-zero bytes past the fields this library knows, or a bad entry
 *   (connscope_last_error() says which); -ENOENT for a cgroup path that does
 *   not exist; -ENOSPC past a list's capacity; another negative errno when a
 *   map update fails.
 * @par Thread safety
 * As connscope_session_poll(); a callback of s may call it.
 * @par Ownership
 * filters and its lists are copied; the caller keeps them.
 */
CONNSCOPE_API int connscope_session_set_filters(connscope_session *s,
                                                const struct connscope_filters *filters) CONNSCOPE_NOEXCEPT;

/**
 * Tells which backend the session uses and why.
 * @param s the session.
 * @param out set out->sz = sizeof(*out) first. The library fills the fields
 *   sz covers and zeroes those it does not know.
 * @return 0; -EINVAL for a NULL s or out, or sz smaller than sizeof(size_t).
 * @par Thread safety
 * As connscope_session_poll().
 * @par Ownership
 * The strings belong to the session and live until connscope_session_free().
 */
CONNSCOPE_API int connscope_session_backend(const connscope_session *s, struct connscope_backend_info *out) CONNSCOPE_NOEXCEPT;

/**
 * Reads the verdict on one of the backends the session tried.
 * @param s the session.
 * @param index 0 to connscope_backend_info::tried_count - 1, in probe order.
 * @param out set out->sz = sizeof(*out) first. The library fills the fields
 *   sz covers and zeroes those it does not know.
 * @return 0; -EINVAL for a NULL s or out or a too small sz; -ERANGE when index is past the end.
 * @par Thread safety
 * As connscope_session_poll().
 * @par Ownership
 * The strings belong to the session and live until connscope_session_free().
 */
CONNSCOPE_API int connscope_session_backend_tried(const connscope_session *s, size_t index,
                                                  struct connscope_backend_status *out) CONNSCOPE_NOEXCEPT;

/**
 * The event as one line of JSON, exactly as `connscope-trace --json` prints
 * it (the "security_socket_connect" record), without a newline.
 *
 * Writes at most len bytes, NUL included, like snprintf.
 * @param ev the event a callback received, during that callback.
 * @param buf where to write; may be NULL when len is 0.
 * @param len the size of buf.
 * @return the length of the whole text (not counting the NUL): when it is
 *   len or more, the text was cut short and a buffer of return + 1 bytes
 *   holds it; -EINVAL when ev is not the event of a callback running on this
 *   thread, or buf is NULL with len > 0.
 * @par Thread safety
 * From the callback that received ev.
 */
CONNSCOPE_API int connscope_connect_event_json(const struct connscope_connect_event *ev, char *buf,
                                               size_t len) CONNSCOPE_NOEXCEPT;

/**
 * The event as one line of JSON, exactly as `connscope-trace --json` prints
 * it (the "net_tcp_connect" record). As connscope_connect_event_json().
 * @param ev the event a callback received, during that callback.
 * @param buf where to write; may be NULL when len is 0.
 * @param len the size of buf.
 * @return as connscope_connect_event_json().
 * @par Thread safety
 * From the callback that received ev.
 */
CONNSCOPE_API int connscope_tcp_connect_event_json(const struct connscope_tcp_connect_event *ev, char *buf,
                                                   size_t len) CONNSCOPE_NOEXCEPT;

/**
 * The event as one line of JSON, exactly as `connscope-trace --json` prints
 * it (the "connect_outcome" record). As connscope_connect_event_json()
 * (since 0.4).
 * @param ev the event a callback received, during that callback.
 * @param buf where to write; may be NULL when len is 0.
 * @param len the size of buf.
 * @return as connscope_connect_event_json().
 * @par Thread safety
 * From the callback that received ev.
 */
CONNSCOPE_API int connscope_outcome_event_json(const struct connscope_outcome_event *ev, char *buf,
                                               size_t len) CONNSCOPE_NOEXCEPT;

/**
 * The session's counters as one line of JSON, exactly as the "stats" record
 * of `connscope-trace --json` (with the backend's name).
 * @param s the session.
 * @param buf where to write; may be NULL when len is 0.
 * @param len the size of buf.
 * @return as connscope_connect_event_json(); -EINVAL for a NULL s.
 * @par Thread safety
 * As connscope_session_poll().
 */
CONNSCOPE_API int connscope_session_stats_json(const connscope_session *s, char *buf,
                                               size_t len) CONNSCOPE_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* CONNSCOPE_H */
