/**
 * @file dns.hpp
 * @brief DNS messages, the DnsCorrelator interface, and the default correlator.
 *
 * A Session feeds every DNS answer the host receives to a DnsCorrelator and
 * asks it for the names of each TCP connect's destination. The default engine
 * is make_default_correlator(); plug in your own through Options::dns.
 */
#pragma once

#include <connscope/address.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace connscope {

/** DNS record types the library decodes. */
enum class DnsType : std::uint16_t {
    a = 1,      /**< A: an IPv4 address. */
    cname = 5,  /**< CNAME: an alias. */
    aaaa = 28,  /**< AAAA: an IPv6 address. */
};

/** One answer-section record of type A, AAAA or CNAME (others are skipped). */
struct DnsRecord {
    std::string name;       /**< Owner name, lower case, no trailing dot. */
    DnsType type = DnsType::a; /**< A, AAAA or CNAME. */
    std::uint32_t ttl = 0;  /**< TTL in seconds. */
    IpAddress address;      /**< For A and AAAA. */
    std::string target;     /**< For CNAME: the canonical name, lower case, no trailing dot. */
};

/** A parsed DNS response. */
struct DnsMessage {
    std::uint16_t id = 0;                /**< Transaction id. */
    std::uint8_t rcode = 0;              /**< Response code (0 = NOERROR). */
    std::vector<std::string> questions;  /**< Question names, lower case, no trailing dot. */
    std::vector<DnsRecord> answers;      /**< A, AAAA and CNAME answers in message order. */
};

/** Why a message was rejected. Every value but ok is counted by Session::stats(). */
enum class DnsParseError : std::uint8_t {
    ok = 0,               /**< Parsed. */
    truncated,            /**< A header, name or record runs past the end. */
    not_a_response,       /**< QR bit clear: a query, not an answer. */
    bad_label,            /**< A label type that RFC 1035 reserves (0x40, 0x80). */
    bad_pointer,          /**< A compression pointer past the end, or forward into itself. */
    compression_loop,     /**< Compression pointers that loop or nest too deep. */
    name_too_long,        /**< A name longer than 255 bytes. */
    bad_rdata,            /**< RDLENGTH that does not fit the record type. */
};

/** A short name for a parse error ("truncated", "compression_loop", ...). */
CONNSCOPE_API const char *to_string(DnsParseError error) noexcept;

/**
 * Parses a DNS response (RFC 1035, with name compression).
 *
 * Every read is bounds-checked and compression is loop-safe. Records of other
 * types than A, AAAA and CNAME are skipped; only the answer section is kept.
 * @param data the message, without the 2-byte TCP length prefix.
 * @param size its length in bytes.
 * @param out filled on success; unspecified on failure.
 * @return DnsParseError::ok, or why the message was rejected.
 * @par Thread safety
 * Reentrant.
 */
CONNSCOPE_API DnsParseError parse_dns_message(const std::uint8_t *data, std::size_t size, DnsMessage &out);

/** Counters a correlator reports; they appear in Session::stats(). */
struct DnsCorrelatorStats {
    std::uint64_t answers = 0;   /**< Messages observed. */
    /** Entries dropped for room (LRU): evicted_budget + evicted_global; expiry is not counted here. */
    std::uint64_t evictions = 0;
    std::uint64_t entries = 0;   /**< Names held now. */
    /**
     * Bytes charged for the entries held now; never above DnsCacheOptions::max_bytes
     * in the default correlator (see there for what is charged).
     */
    std::uint64_t bytes = 0;
    /** Entries a budget group over its share evicted from itself. */
    std::uint64_t evicted_budget = 0;
    /** Entries evicted because the cache (or its non-host pool) was full. */
    std::uint64_t evicted_global = 0;
    /** Entries removed because they expired (max(TTL, grace) passed). */
    std::uint64_t expired = 0;
    std::uint64_t host_entries = 0; /**< Of entries, those of DnsCacheOptions::host_netns. */
    std::uint64_t host_bytes = 0;   /**< Of bytes, those of DnsCacheOptions::host_netns. */
    std::uint64_t budget_groups = 0; /**< Budget groups holding entries now, the host's included. */
    /** Memory the cache has allocated (slabs and indexes at their capacity, name text): >= what is live. */
    std::uint64_t bytes_allocated = 0;
};

/**
 * Learns names from DNS answers and tells the names of an address.
 *
 * The Session calls observe() for every answer, in the order the host
 * received them, and lookup() for every TCP connect, on the thread that
 * polls. Implementations need not be thread-safe unless shared between Sessions.
 */
class CONNSCOPE_API DnsCorrelator {
public:
    virtual ~DnsCorrelator() = default;
    /**
     * Takes one answer.
     * @param netns inode number of the network namespace that received it.
     * @param time_ns when it was received, ns since the Unix epoch.
     * @param answer the parsed response.
     */
    virtual void observe(std::uint64_t netns, std::uint64_t time_ns, const DnsMessage &answer) = 0;
    /**
     * The names that resolved to an address in a network namespace.
     * @param netns inode number of the connecting process's network namespace.
     * @param address the destination; an IPv4-mapped IPv6 address should be looked up as IPv4.
     * @param now_ns the connect's time, ns since the Unix epoch (names expired then are not returned).
     * @return the names, most relevant first; empty when none is known.
     */
    virtual std::vector<std::string> lookup(std::uint64_t netns, const IpAddress &address,
                                            std::uint64_t now_ns) = 0;
    /** Counters for Session::stats(); the default reports none. */
    virtual DnsCorrelatorStats stats() const { return {}; }
};

/**
 * Settings of the default correlator.
 *
 * @par Budgets: no namespace can blind another
 * Every answer belongs to a budget group. The answers of host_netns form the
 * host's group; any other network namespace belongs to the group
 * budget_of(netns) names (when budget_of is empty, each namespace is its own
 * group). Because an unprivileged user can make any number of network
 * namespaces (`unshare -U -r -n`), budget_of should map a namespace to
 * something such a user cannot multiply: the owner (uid) of its user namespace,
 * or the top-level user namespace below the initial one. Then:
 * - the host's group may use the whole cache, and at least host_reserve_percent
 *   of it (entries and bytes) is kept for it: the other groups together never
 *   hold more than the rest (their "pool");
 * - when the pool is full, a group over budget_share_percent of the cache evicts
 *   its own least recently used entries (counted in evicted_budget); a group
 *   within its share evicts the pool's least recently used entries of groups
 *   over their share, else the pool's least recently used entry
 *   (evicted_global);
 * - the host evicts from the pool first when the whole cache is full, then its
 *   own oldest; the others take from the host only what the host holds above
 *   its reserve (both evicted_global).
 * So a flood from any number of namespaces of one group evicts only that
 * group's names while other groups are within their shares; several groups
 * flooding at once, each within its share, share the pool in LRU order.
 */
struct DnsCacheOptions {
    /**
     * Names stay valid for max(TTL, grace) after the answer. Real clients
     * connect right after answers with TTL 0, so grace keeps those.
     */
    std::chrono::seconds grace{60};
    /** The most (namespace, address, name) entries held; least recently used go first. */
    std::size_t max_entries = 1u << 20;
    /**
     * The most bytes held. Each entry is charged as if it had its address and
     * name to itself: the entry, its address group, its name slot, the name's
     * text past 48 bytes (as a malloc chunk), and its share of the three hash
     * indexes at their lowest load. That is never below what the entries use,
     * and the slabs never grow past the entries this bound can hold, so what
     * the cache allocates (DnsCorrelatorStats::bytes_allocated) stays near it:
     * the hash tables grow by doubling, and long names' text can come on top
     * when short names grew the slabs first (at worst about 1.5 times).
     */
    std::size_t max_bytes = std::size_t{32} << 20;
    /** Inode number of the host's network namespace; 0 = unknown (no reserve). */
    std::uint64_t host_netns = 0;
    /** Percent of max_entries and max_bytes kept for host_netns (0..100); unused when host_netns is 0. */
    unsigned host_reserve_percent = 25;
    /** Percent of max_entries and max_bytes a budget group other than the host's may hold when the pool is full (1..100). */
    unsigned budget_share_percent = 25;
    /**
     * The budget group of a network namespace other than host_netns; empty
     * means each namespace is its own group. A Session whose default
     * correlator it makes fills an empty budget_of with the owner the kernel
     * read for the answer's socket (docs/guide.md, "Under a flood"): its
     * network namespace when that belongs to the initial user namespace, else
     * the top user namespace below the initial one when root made it, else
     * the uid that made that one. Called inside observe(), on the
     * observing thread, whenever an answer adds an address the namespace does
     * not hold yet (an address keeps the group it was added in); it must not
     * throw nor call back into the correlator.
     */
    std::function<std::uint64_t(std::uint64_t netns)> budget_of;
};

/**
 * Makes the default correlator.
 *
 * Semantics:
 * - For each A/AAAA record, the chain from the question name through every
 *   CNAME to the record's owner, in that order, is remembered for the
 *   address, keyed by (network namespace, address).
 * - lookup() returns the newest answer's chain first, then older names still
 *   valid for that address, without duplicates.
 * - An IPv4-mapped IPv6 address is looked up as IPv4.
 * - A name expires max(TTL, grace) after its answer was received.
 * - At most options.max_entries entries and options.max_bytes bytes, shared
 *   between budget groups as DnsCacheOptions describes; every eviction is
 *   counted by reason.
 * @throws Error EINVAL when max_entries is 0, max_bytes is below 4096,
 *   host_reserve_percent is above 100 or budget_share_percent is 0 or above 100.
 */
CONNSCOPE_API std::unique_ptr<DnsCorrelator> make_default_correlator(const DnsCacheOptions &options = {});

} // namespace connscope
