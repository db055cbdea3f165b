/**
 * @file events.hpp
 * @brief The typed events a Session delivers: SecuritySocketConnect and NetTcpConnect.
 *
 * Events are plain values. A callback receives a const reference that is
 * valid during the callback; copy what you keep.
 */
#pragma once

#include <connscope/address.hpp>

#include <cstdint>
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
};

} // namespace connscope
