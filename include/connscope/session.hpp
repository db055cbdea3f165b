/**
 * @file session.hpp
 * @brief connscope::Session: the object that attaches to the kernel and delivers events.
 */
#pragma once

#include <connscope/dns.hpp>
#include <connscope/events.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace connscope {

/** DNS capture and correlation settings. */
struct DnsOptions {
    /** Capture DNS answers in the kernel and fill NetTcpConnect::results. */
    bool enabled = true;
    /** Answers are taken from these source ports (UDP and TCP). 1 to 16 ports. */
    std::vector<std::uint16_t> ports{53};
    /** The most payload bytes copied per packet (64 to 8192); longer ones are truncated and counted. */
    std::uint32_t payload_max = 1500;
    /** The correlator to use; null means make_default_correlator(cache). */
    std::shared_ptr<DnsCorrelator> correlator;
    /** Settings of the default correlator (ignored when correlator is set). */
    DnsCacheOptions cache;
};

/** An inclusive range of remote ports, in host byte order. */
struct PortRange {
    std::uint16_t first = 0; /**< Lowest port in the range. */
    std::uint16_t last = 0;  /**< Highest port in the range (>= first). */
};

/**
 * Which connects to report, decided in the kernel before any ring space is
 * used, so a filtered-out connect costs about what an empty hook costs.
 *
 * An empty list means "any". A connect is reported when it matches every
 * non-empty list (different lists: all of), matching any one value within a
 * list (same list: any of). DNS capture is not filtered: answers are needed
 * whoever connects later.
 */
struct Filters {
    std::vector<std::uint32_t> pids;    /**< Process ids (tgid), at most 4096. */
    std::vector<std::uint32_t> uids;    /**< Real user ids, at most 4096. */
    std::vector<std::string> comms;     /**< Thread names (comm), 1 to 15 bytes each, at most 4096. */
    /**
     * cgroup v2 directories, absolute or relative to the cgroup v2 mount; a
     * connect from that cgroup or any cgroup below it matches. At most 4096.
     */
    std::vector<std::string> cgroups;
    /** Address families: AF_INET (2), AF_INET6 (10), AF_UNIX (1). */
    std::vector<std::uint16_t> families;
    /** Remote port ranges, at most 16; connects without a port (UNIX) never match. */
    std::vector<PortRange> ports;
    /** Leave out connects made by the process that owns the Session. */
    bool exclude_self = true;
};

/** How much a log callback is told, from the least to the most. */
enum class LogLevel : int {
    error = 1,   /**< Something failed that the caller should know of. */
    warning = 2, /**< A capability is missing or degraded (a backend refused, DNS capture off). */
    info = 3,    /**< What was chosen and why; each backend's verdict while probing. */
    debug = 4,   /**< libbpf's and the kernel's own detail (verifier logs). */
};

/**
 * Receives the library's diagnostics and libbpf's messages about the
 * library's own BPF objects: a level and one line of text without a newline.
 *
 * It runs on the thread that called into the library (the Session
 * constructor, set_filters(), probe_backends()), while that call runs.
 * libbpf's messages about a program's own libbpf objects never come here
 * (see docs/guide.md, "libbpf's messages").
 */
using LogCallback = std::function<void(LogLevel level, const std::string &message)>;

/** What a HealthEvent reports. */
enum class HealthKind : int {
    /** A canary connect of the Session's own did not come back through the ring within the interval. */
    canary_missed = 1,
    /** A link the Session owns is no longer attached (another process detached it). */
    link_detached = 2,
    /** The Session attached its programs again after one of the above. */
    reattached = 3,
    /** Attaching again failed; the message says why. The Session tries again at the next interval. */
    reattach_failed = 4,
};

/**
 * The Session's watch over its own hooks (Options::liveness_interval): a hook
 * that stopped firing or a link that went missing, and what was done about it.
 */
struct HealthEvent {
    HealthKind kind = HealthKind::canary_missed; /**< What happened. */
    /** What it concerns: "IPv4 canary (127.0.0.1:40123)", "cgroup/connect4 on /sys/fs/cgroup/unified". */
    std::string what;
    /** A sentence: what went missing, since when, and what the Session did about it. */
    std::string message;
    std::uint64_t timestamp_ns = 0; /**< When it was found, ns since the Unix epoch. */
    std::uint64_t sequence = 0;     /**< As SecuritySocketConnect::sequence. */
};

/** How a Session is set up. Every field has a usable default. */
struct Options {
    /**
     * Backends to try, in order: "auto" (fentry, lsm, kprobe, cgroup,
     * tracepoint), or names from that list. The first that loads and attaches
     * is used.
     */
    std::vector<std::string> backends{"auto"};
    /** Ring buffer size in bytes: a power of two, a multiple of the page size. */
    std::size_t ring_size = 4u << 20;
    /**
     * The longest an event may wait in the ring before poll() returns it
     * (1 ms to 10 s). Records are submitted without a wakeup each; the
     * consumer is woken by a timer of this period, or early when the ring is
     * a quarter full.
     */
    std::chrono::milliseconds max_latency{10};
    /** Called for every connect attempt. */
    std::function<void(const SecuritySocketConnect &)> on_connect;
    /** Called for every TCP connect over IPv4/IPv6, right after its on_connect. */
    std::function<void(const NetTcpConnect &)> on_tcp_connect;
    /**
     * Follow each connect to its outcome, for on_outcome, and report the
     * connect(2)s an LSM refused before the backend's hook. Connects are
     * followed only when on_outcome is set: that costs on every TCP state
     * change of the host and at every connect's return (docs/performance.md),
     * so a Session without on_outcome only watches connect(2)'s return for
     * the refused ones (since 0.5). Off: neither, and BackendInfo::gaps says
     * that the lsm and cgroup backends then miss the refused ones.
     */
    bool outcomes = true;
    /** Called with what became of each connect, after its on_connect. */
    std::function<void(const ConnectOutcome &)> on_outcome;
    /** DNS capture and correlation. */
    DnsOptions dns;
    /** Which connects to report; the default reports all but the Session's own. */
    Filters filters;
    /** Diagnostics; empty (the default) keeps the library silent. */
    LogCallback on_log;
    /** The most detailed level given to on_log. */
    LogLevel log_level = LogLevel::warning;
    /**
     * The constructor returns only after a connect of the Session's own (one
     * per address family, to a loopback port, never delivered) has come back
     * through the ring from the chosen backend; it waits at most this long
     * (100 ms to 60 s), then fails with Errc::hook_not_firing.
     */
    std::chrono::milliseconds startup_timeout{5000};
    /**
     * While running, the same canary every interval, and a check that every
     * link the Session owns is still attached; what is found missing is
     * reported to on_health, counted in Stats, and attached again. 0 turns it
     * off; else 1 s to 1 h, and more than max_latency.
     */
    std::chrono::milliseconds liveness_interval{10000};
    /** Receives health events (also given to on_log as warnings). */
    std::function<void(const HealthEvent &)> on_health;
    /**
     * The cgroup v2 directory the cgroup programs (the cgroup backend, the
     * whole DNS capture) attach to. Empty (the default): the hierarchy's
     * root (cgroup id 1), found at a cgroup2 mount of this process's, else
     * through /proc/1/root (the host's, where its PIDs are shared), else, on
     * a host with no cgroup2 mounted anywhere (cgroup v1 only), through a
     * private mount of the library's own that appears in no mount table
     * (needs CAP_SYS_ADMIN). When only a subtree is reachable (a container
     * with its own cgroup namespace) the Session refuses with
     * Errc::cgroup_subtree. A path: watch that directory on purpose (a
     * subtree: only the processes in it and below it). See
     * BackendInfo::cgroup_scope.
     */
    std::string cgroup_root;
};

/** What probing found for one backend. */
struct BackendStatus {
    std::string name;     /**< "lsm", "fentry", "kprobe", "cgroup" or "tracepoint". */
    bool available = false; /**< It loaded and attached. */
    /** Empty when available; else the failing step, the errno and its meaning, and the remedy. */
    std::string reason;
};

/** Which backend a Session uses and why. */
struct BackendInfo {
    std::string name;   /**< The backend in use. */
    std::string reason; /**< Why it was chosen (and why those before it were not). */
    /** What this backend cannot see on this kernel (e.g. UNIX connects); empty when nothing. */
    std::vector<std::string> gaps;
    /** Every backend tried, in order, with its verdict. */
    std::vector<BackendStatus> tried;
    /**
     * Whether DNS capture runs ("on: ..." or "off: <why>"), its hooks, and
     * what this kernel cannot give it: whether sockets open before the start
     * are attributed, and how many were found.
     */
    std::string dns;
    /**
     * The directory the cgroup programs are attached to: a path
     * ("/sys/fs/cgroup/unified", "/proc/1/root/sys/fs/cgroup"), "(private
     * mount)", or empty when none is.
     */
    std::string cgroup_root;
    /**
     * What the cgroup programs watch and how the directory was found, one
     * sentence: "the cgroup v2 root (cgroup id 1) at /sys/fs/cgroup: every
     * process", "the subtree at ... (cgroup id N), as asked: only the
     * processes in it and below it", or "none: <why>".
     */
    std::string cgroup_scope;
};

/**
 * Counters since the Session started, each in one unit.
 *
 * Ring records: every record a hook produced is delivered (events,
 * tcp_events' connect, DNS records) or lost, so for connect records
 * `produced = events + lost_ring_connect (+ their decode errors)` holds
 * exactly, and `lost = lost_ring_connect + lost_ring_dns + lost_ring_outcome + decode_errors`.
 * The other counters are not losses of records: DNS records that arrived but
 * whose message was not used, bytes, cache names and callbacks.
 */
struct Stats {
    std::uint64_t events = 0;        /**< SecuritySocketConnect events delivered. */
    std::uint64_t tcp_events = 0;    /**< NetTcpConnect events delivered. */
    std::uint64_t dns_messages = 0;  /**< DNS answers parsed and given to the correlator. */
    /** Ring records lost: lost_ring_connect + lost_ring_dns + lost_ring_outcome + decode_errors. */
    std::uint64_t lost = 0;
    std::uint64_t lost_ring_connect = 0; /**< Connect records dropped in the kernel: the ring was full. */
    /** DNS records dropped in the kernel: the ring was full, or past its DNS limit (dns_dropped_reserve). */
    std::uint64_t lost_ring_dns = 0;
    std::uint64_t decode_errors = 0;     /**< Ring records delivered that the decoder could not read. */
    std::uint64_t dns_truncated = 0;     /**< DNS records whose payload was longer than payload_max (not parsed). */
    std::uint64_t dns_malformed = 0;     /**< DNS messages the parser rejected. */
    std::uint64_t dns_tcp_dropped_bytes = 0; /**< DNS-over-TCP bytes dropped: out of order or over the reassembly bound. */
    std::uint64_t dns_names_evicted = 0;     /**< Names the correlator evicted to stay in bounds. */
    std::uint64_t callback_errors = 0;   /**< Callbacks that threw; their events count as delivered. */
    std::uint64_t canaries_sent = 0;     /**< Canary connects made (one per family per round). */
    std::uint64_t canaries_missed = 0;   /**< Canary connects that did not come back within the interval. */
    std::uint64_t links_detached = 0;    /**< Times a link of the Session's was found detached. */
    std::uint64_t reattachments = 0;     /**< Times the Session attached its programs again. */
    /**
     * Nanoseconds the Session was not sure it was watching: from the last
     * liveness check that passed to the re-attach that followed a failed one.
     * Connects in that time may be missing without being counted in lost.
     */
    std::uint64_t unwatched_ns = 0;
    std::uint64_t outcomes = 0;          /**< ConnectOutcome events delivered. */
    /**
     * Outcomes dropped in the kernel: the ring was full, or more TCP
     * handshakes were under way at once than the kernel's table holds (16384).
     */
    std::uint64_t lost_ring_outcome = 0;
    /**
     * Of lost_ring_dns, the DNS records dropped because the ring was more than
     * half full: the other half is kept for connect records, so a DNS flood
     * loses its own records first, never theirs.
     */
    std::uint64_t dns_dropped_reserve = 0;
    /** Names a budget group over its share evicted from itself (DnsCorrelatorStats::evicted_budget). */
    std::uint64_t dns_evicted_budget = 0;
    /** Names evicted because the cache or its non-host pool was full (DnsCorrelatorStats::evicted_global). */
    std::uint64_t dns_evicted_global = 0;
    /** Names removed because they expired; not part of dns_names_evicted. */
    std::uint64_t dns_expired = 0;
    std::uint64_t dns_cache_entries = 0; /**< Names the correlator holds now. */
    /** Bytes charged for the names held now (DnsCorrelatorStats::bytes); at most dns_cache_bytes_max. */
    std::uint64_t dns_cache_bytes = 0;
    /** The default correlator's memory bound (DnsCacheOptions::max_bytes); 0 with a correlator of your own. */
    std::uint64_t dns_cache_bytes_max = 0;
    /** Memory the correlator has allocated now, slack of its tables included (DnsCorrelatorStats::bytes_allocated). */
    std::uint64_t dns_cache_bytes_allocated = 0;
    /** Budget groups holding names now, the host's included (DnsCorrelatorStats::budget_groups). */
    std::uint64_t dns_cache_budget_groups = 0;
};

/**
 * Watches every connect() on the host and delivers typed events.
 *
 * A Session owns its BPF programs, links, maps and the one ring buffer they
 * write to. Constructing it probes and attaches; destroying it detaches and
 * frees everything. Callbacks run only inside poll() and consume(), on the
 * calling thread.
 *
 * Needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (or root).
 * @par Thread safety
 * A Session is not thread-safe: call its members from one thread at a time.
 * Distinct Sessions are independent.
 * @par Ownership
 * Move-only. A moved-from Session throws Error(Errc::moved_from) from every
 * member but the destructor and assignment.
 */
class CONNSCOPE_API Session {
public:
    /**
     * Probes the backends, loads and attaches the first that works, and
     * returns once its hooks are seen firing (Options::startup_timeout).
     * @throws Error EINVAL for a bad option (the message names the valid values);
     *   EPERM when privileges are missing; Errc::backend_unavailable when no
     *   requested backend works (the message gives each one's reason);
     *   Errc::no_cgroup2, Errc::no_btf; Errc::cgroup_subtree when only a
     *   subtree of the cgroup v2 hierarchy is reachable and
     *   Options::cgroup_root does not ask for one (the message says how to
     *   reach the root); Errc::hook_not_firing when the
     *   programs attached but the Session's own canary connect did not come
     *   back within Options::startup_timeout.
     */
    explicit Session(Options options);
    /** Detaches every BPF program and frees every link, map and fd. */
    ~Session();
    /** Takes over other's session; other is left moved-from. */
    Session(Session &&other) noexcept;
    /** Frees this session, then takes over other's; other is left moved-from. */
    Session &operator=(Session &&other) noexcept;
    Session(const Session &) = delete;
    Session &operator=(const Session &) = delete;

    /**
     * Waits up to timeout for events and delivers them.
     * @param timeout how long to wait; zero returns at once, negative waits without end.
     * @return the number of ring records handled, or the value a callback passed to break_poll().
     * @throws Error on a system failure (EINTR is not one: it returns what was handled).
     */
    int poll(std::chrono::milliseconds timeout);
    /** Delivers what the ring holds now without waiting; returns as poll(). */
    int consume();
    /**
     * A file descriptor (epoll) that becomes readable when events wait: when
     * the ring passes its fill mark, or max_latency after the last poll.
     * Put it in your own loop and call consume() when it is readable.
     */
    int fd() const;
    /**
     * From inside a callback: stop the current poll()/consume() after this
     * event and make it return result. The C API uses it for callbacks that return < 0.
     */
    void break_poll(int result);
    /**
     * Replaces the filters while running (map updates, no reload). Connects
     * made while the update is under way may be judged by either set.
     * @throws Error EINVAL for a bad filter (the message says which), ENOENT
     *   for a cgroup path that does not exist, ENOSPC past a set's capacity.
     */
    void set_filters(const Filters &filters);
    /** The backend in use and why. */
    const BackendInfo &backend() const;
    /** Counters; see Stats. */
    Stats stats() const;

    /**
     * Probes every backend without starting a Session (each is loaded,
     * attached and detached at once).
     * @param on_log receives diagnostics as Options::on_log does; empty: silent.
     * @param log_level the most detailed level given to on_log.
     * @return one entry per backend, in probe order.
     */
    static std::vector<BackendStatus> probe_backends(const LogCallback &on_log = {},
                                                     LogLevel log_level = LogLevel::warning);

    /** Implementation (private). */
    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

/**
 * Splits a comma-separated backend list ("auto", "cgroup", "fentry,cgroup").
 * @throws Error EINVAL naming the valid backends when a name is unknown.
 */
CONNSCOPE_API std::vector<std::string> parse_backend_list(const std::string &text);

/** Backend names in probe order. */
CONNSCOPE_API const std::vector<std::string> &backend_names();

} // namespace connscope
