// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// DNS ring records into DNS messages for the correlator: UDP answers are
// parsed at once, TCP segments are reassembled per flow first.
#pragma once

#include <connscope/dns.hpp>
#include <connscope/session.hpp>

#include "dns/tcp_stream.hpp"

#include <cstddef>
#include <cstdint>

namespace connscope::detail {

// The default correlator's budget group (DnsCacheOptions::budget_of) of a
// network namespace, from what its DNS record says about the namespace's
// owner (struct dns_owner in bpf/dns.bpf.h): something its user cannot
// multiply. A namespace of the initial user namespace (owner_ns 0) can only
// be made by root, so it is its own group; every namespace below a top-level
// user namespace that root made is that user namespace's; every namespace
// below one that another user made is that user's, however many user and
// network namespaces the user makes. The kinds are tagged apart in bits 32..33.
std::uint64_t dns_budget_key(std::uint32_t net_ns, std::uint32_t owner_uid, std::uint32_t owner_ns);

class DnsFeed {
public:
    // Counts into `counters` (dns_messages, dns_truncated, dns_malformed, decode_errors).
    explicit DnsFeed(Stats &counters) : counters_(counters) {}

    // One record as the ring handed it over; correlator may be null.
    void record(const void *data, std::size_t size, std::int64_t epoch_offset_ns, DnsCorrelator *correlator);

    std::uint64_t tcp_dropped_bytes() const { return tcp_.dropped_bytes(); }

    // The budget key of the record being fed, for a budget_of the correlator
    // calls from inside observe(); any other namespace is its own group.
    std::uint64_t budget_key(std::uint64_t netns) const { return netns == key_netns_ ? key_ : netns; }

private:
    void observe(std::uint64_t netns, std::uint64_t time_ns, const std::uint8_t *msg, std::size_t len,
                 DnsCorrelator *correlator);

    Stats &counters_;
    dns::TcpReassembler tcp_;
    DnsMessage message_; // reused, so steady-state parsing does not allocate
    std::uint64_t key_netns_ = 0, key_ = 0;
};

} // namespace connscope::detail
