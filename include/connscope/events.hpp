/**
 * @file events.hpp
 * @brief The typed events a Session delivers: SecuritySocketConnect, NetTcpConnect and ConnectOutcome.
 *
 * Events are plain values. A callback receives a const reference that is
 * valid during the callback; copy what you keep. The Session decodes every
 * record into the same event objects, whose strings and vectors keep their
 * buffers, so that delivering an event allocates nothing once they have
 * grown to the longest values seen (with the default correlator; since 0.5).
 */
#pragma once

#include <connscope/address.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace connscope {

/** The socket type, as socket(2) names it (the SOCK_* value without flags). */
enum class SocketType : std::uint16_t {
    unknown = 0,   /**< Not known (or not a SOCK_* value the library names). */
    stream = 1,    /**< SOCK_STREAM */
    dgram = 2,     /**< SOCK_DGRAM */
    raw = 3,       /**< SOCK_RAW */
    rdm = 4,       /**< SOCK_RDM */
    seqpacket = 5, /**< SOCK_SEQPACKET */
    dccp = 6,      /**< SOCK_DCCP */
    packet = 10,   /**< SOCK_PACKET */
};

/** The kernel's name of a socket type: "SOCK_STREAM", ..., or "SOCK_<number>". */
CONNSCOPE_API std::string socket_type_name(SocketType type);

/**
 * The path by which a process asked for a connect (docs/guide.md, "Connect
 * paths"). Every backend tells it from the system call the task is in, or
 * from the io_uring request.
 */
enum class ConnectVia : std::uint16_t {
    /** Not asked for by a system call or io_uring request the library knows: a connect the kernel made itself. */
    unknown = 0,
    /** connect(2), a 32-bit task's connect or socketcall(SYS_CONNECT) included, and the connect of
     *  TCP_FASTOPEN_CONNECT (whose SYN leaves with the first write). */
    connect = 1,
    /** sendto(2), sendmsg(2) or sendmmsg(2) with MSG_FASTOPEN on an unconnected TCP socket: TCP Fast Open. */
    fastopen = 2,
    /** An io_uring request: IORING_OP_CONNECT, or a send with MSG_FASTOPEN, in the submitting process. */
    io_uring = 3,
};

/** The name of a path as events and JSON give it: "unknown", "connect", "fastopen", "io_uring". */
CONNSCOPE_API std::string connect_via_name(ConnectVia via);

/** Namespace inode numbers, as in the links of /proc/PID/ns/ (0 where not known). */
struct Namespaces {
    std::uint32_t mnt = 0;    /**< Mount namespace. */
    std::uint32_t net = 0;    /**< Network namespace. */
    std::uint32_t pid = 0;    /**< PID namespace the process lives in (/proc/PID/ns/pid). */
    std::uint32_t user = 0;   /**< User namespace. */
    std::uint32_t uts = 0;    /**< UTS namespace. */
    std::uint32_t ipc = 0;    /**< IPC namespace. */
    std::uint32_t cgroup = 0; /**< Cgroup namespace. */
};

/** Who made a connect and when: read in the kernel from the calling task. */
struct ProcessContext {
    std::uint64_t timestamp_ns = 0; /**< When the hook ran, in ns since the Unix epoch. */
    std::uint32_t pid = 0;          /**< Process id (the kernel's tgid), as seen from the initial PID namespace. */
    std::uint32_t tid = 0;          /**< Thread id (the kernel's pid). */
    std::uint32_t ppid = 0;         /**< The real parent's process id. */
    std::uint32_t uid = 0;          /**< Real user id (initial user namespace). */
    std::uint32_t gid = 0;          /**< Real group id (initial user namespace). */
    std::string comm;               /**< The thread's comm (at most 15 bytes, raw). */
    std::uint64_t cgroup_id = 0;    /**< cgroup v2 id: the inode number of the cgroup's directory. */
    Namespaces ns;                  /**< Namespace inode numbers. */
    /**
     * The id of the container the process ran in (64 lowercase hex digits),
     * or "" when its cgroup is no container's or could not be found (since 0.4).
     *
     * Read in user space from the path of the cgroup cgroup_id names: the
     * kernel gives the id at connect time, and the Session finds its
     * directory when it decodes the event, by walking the cgroup v2
     * hierarchy it is attached to. The layouts recognised, with the systemd
     * and the cgroupfs cgroup drivers, Kubernetes pod slices included:
     * Docker (`docker-<id>.scope`, `docker/<id>`), containerd's CRI
     * (`cri-containerd-<id>.scope`, `kubepods/.../pod<uid>/<id>`), CRI-O
     * (`crio-<id>.scope`, `crio-<id>`) and Podman (`libpod-<id>.scope`,
     * `libpod-<id>`). A cgroup below a container's (its init.scope, one it
     * made) is that container's; of nested containers the innermost wins.
     * The runtimes' monitors (`crio-conmon-<id>`, `libpod-conmon-<id>`) are
     * no container.
     *
     * So it is "" when the container's cgroup was removed before the event
     * was decoded (a container that exits at once), and when the cgroup was
     * made after the Session's last walk and the event is decoded less than
     * 250 ms after that walk: a cgroup id not yet known makes the Session
     * walk the hierarchy again (inside poll()), at most once per 250 ms. Ids
     * are remembered for at most 16384 cgroups (the table starts over when
     * full). With Options::cgroup_root set to a subtree, only the cgroups
     * below it are found, and their paths are read from there; without a
     * cgroup v2 hierarchy it is always "".
     */
    std::string container_id;
};

/**
 * Every connect attempt, from the kernel's security_socket_connect hook (or
 * the closest hook the chosen backend has).
 */
struct SecuritySocketConnect {
    ProcessContext process; /**< The calling process. */
    /**
     * The socket's file descriptor, as passed to connect(2) or to the Fast
     * Open send; -1 when the system call names none (io_uring, socketcall)
     * or the connect came from no system call.
     */
    std::int32_t sockfd = -1;
    SocketType type = SocketType::unknown; /**< The socket's type. */
    SocketAddress remote_addr;             /**< The address connected to. */
    /**
     * True when the address was read from the caller's memory (tracepoint
     * backend) and so may differ from what the kernel used; false when it is
     * the kernel's own copy.
     */
    bool toctou = false;
    ConnectVia via = ConnectVia::unknown; /**< The path the connect came by. */
    /**
     * True when the backend's hook never saw the connect because an LSM
     * ahead of it refused it (lsm and cgroup backends): it was reported when
     * connect(2) returned, from the caller's arguments (so toctou is true).
     */
    bool late = false;
    /** Joins this attempt with its NetTcpConnect and its ConnectOutcome; never 0. */
    std::uint64_t connect_id = 0;
    /** The Session's count of events delivered before this one plus one: a gap means a loss. */
    std::uint64_t sequence = 0;
};

/**
 * A TCP connect over IPv4 or IPv6, derived from a SecuritySocketConnect and
 * delivered right after it, with the DNS names that resolved to its address.
 */
struct NetTcpConnect {
    ProcessContext process;   /**< The calling process (the same as the SecuritySocketConnect's). */
    std::int32_t sockfd = -1; /**< As SecuritySocketConnect::sockfd. */
    std::string dst_ip;       /**< Dotted quad or RFC 5952 IPv6; IPv4-mapped IPv6 is shown as IPv6. */
    std::uint16_t dst_port = 0; /**< Destination port, host byte order. */
    /**
     * The DNS names that resolved to dst_ip, as the correlator orders them
     * (the default: the newest answer's chain from question name through
     * every CNAME, then older names still valid). Empty when none is known.
     */
    std::vector<std::string> results;
    ConnectVia via = ConnectVia::unknown; /**< As SecuritySocketConnect::via. */
    std::uint64_t connect_id = 0; /**< As SecuritySocketConnect::connect_id. */
    std::uint64_t sequence = 0;   /**< As SecuritySocketConnect::sequence (every event has its own). */
};

/** What the LSMs said of a connect (security_socket_connect's return). */
enum class LsmVerdict : std::uint8_t {
    unknown = 0, /**< Not known: the backend cannot see it (BackendInfo::gaps says so). */
    allowed = 1, /**< Every LSM allowed it. */
    denied = 2,  /**< An LSM refused it: ConnectOutcome::lsm_error says with what. */
};

/** How a TCP handshake ended. */
enum class TcpResult : std::uint8_t {
    none = 0,        /**< No handshake: not TCP, or the connect failed before it began. */
    established = 1, /**< The handshake completed. */
    refused = 2,     /**< The peer answered with a reset (ECONNREFUSED). */
    timed_out = 3,   /**< No answer within the SYN retries (ETIMEDOUT). */
    unreachable = 4, /**< An ICMP error: host, network or port unreachable, and the like. */
    /** Ended without an answer for another reason: the socket was closed (tcp_error 0) or the connect failed. */
    closed = 5,
};

/** The name of a verdict: "unknown", "allowed", "denied". */
CONNSCOPE_API std::string lsm_verdict_name(LsmVerdict verdict);
/** The name of a TCP result: "none", "established", "refused", "timed_out", "unreachable", "closed". */
CONNSCOPE_API std::string tcp_result_name(TcpResult result);

/**
 * What became of a connect, delivered once its last part is known: when the
 * system call returned (UDP, UNIX, and a connect that failed at once) or when
 * the TCP handshake ended, whichever is later. It comes after its
 * SecuritySocketConnect in ring order; connect_id joins them.
 */
struct ConnectOutcome {
    std::uint64_t connect_id = 0;   /**< The SecuritySocketConnect's. */
    std::uint64_t sequence = 0;     /**< As SecuritySocketConnect::sequence. */
    std::uint64_t timestamp_ns = 0; /**< When the outcome was known (handshake end or return), ns since the Unix epoch. */
    /** From the attempt to the handshake's end (TCP) or the system call's return. */
    std::uint64_t duration_ns = 0;
    std::uint32_t pid = 0;          /**< The connecting process (initial PID namespace). */
    std::uint32_t tid = 0;          /**< The connecting thread. */
    ConnectVia via = ConnectVia::unknown; /**< As SecuritySocketConnect::via. */
    /**
     * The system call's return: 0, the bytes a Fast Open send queued, or a
     * negative errno (-EINPROGRESS for a non-blocking connect); nothing when
     * no system call of ours returned (io_uring).
     */
    std::optional<std::int32_t> result;
    LsmVerdict lsm = LsmVerdict::unknown; /**< The LSMs' verdict. */
    std::int32_t lsm_error = 0;     /**< When denied: the errno the LSM gave (EACCES, EPERM). */
    TcpResult tcp = TcpResult::none; /**< How the TCP handshake ended. */
    /** The socket's error when the handshake ended: ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH...; 0 for none. */
    std::int32_t tcp_error = 0;
    /**
     * The address and port the kernel bound the socket to: at the end of the
     * handshake (TCP, refused and timed out ones included: the port the SYN
     * left from), or after a connect that succeeded (UDP). Empty for UNIX
     * sockets and for connects that failed before the kernel chose one.
     */
    std::optional<InetEndpoint> local;
    /** The socket's cookie (getsockopt SO_COOKIE, ss -e, BPF); 0 when the kernel gave it none yet. */
    std::uint64_t socket_cookie = 0;
};

/**
 * One word for an outcome, as JSON's "outcome" gives it: "established",
 * "refused", "timed_out", "unreachable", "closed" (TCP); "denied" (an LSM
 * refused); "connected" (a UDP or UNIX connect that succeeded); "failed"
 * (another error); "unknown" (no result known).
 */
CONNSCOPE_API std::string outcome_name(const ConnectOutcome &outcome);

} // namespace connscope
