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
    std::uint64_t evictions = 0; /**< Entries dropped because the cache was full (LRU). */
    std::uint64_t entries = 0;   /**< Names held now. */
    std::uint64_t bytes = 0;     /**< Approximate memory held now. */
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

/** Settings of the default correlator. */
struct DnsCacheOptions {
    /**
     * Names stay valid for max(TTL, grace) after the answer. Real clients
     * connect right after answers with TTL 0, so grace keeps those.
     */
    std::chrono::seconds grace{60};
    /** The most (namespace, address, name) entries held; least recently used go first. */
    std::size_t max_entries = 1u << 20;
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
 * - At most options.max_entries entries; the least recently used are evicted
 *   and counted.
 * @throws Error EINVAL when max_entries is 0.
 */
CONNSCOPE_API std::unique_ptr<DnsCorrelator> make_default_correlator(const DnsCacheOptions &options = {});

} // namespace connscope
