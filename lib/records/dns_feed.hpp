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

class DnsFeed {
public:
    // Counts into `counters` (dns_messages, dns_truncated, dns_malformed, decode_errors).
    explicit DnsFeed(Stats &counters) : counters_(counters) {}

    // One record as the ring handed it over; correlator may be null.
    void record(const void *data, std::size_t size, std::int64_t epoch_offset_ns, DnsCorrelator *correlator);

    std::uint64_t tcp_dropped_bytes() const { return tcp_.dropped_bytes(); }

private:
    void observe(std::uint64_t netns, std::uint64_t time_ns, const std::uint8_t *msg, std::size_t len,
                 DnsCorrelator *correlator);

    Stats &counters_;
    dns::TcpReassembler tcp_;
    DnsMessage message_; // reused, so steady-state parsing does not allocate
};

} // namespace connscope::detail
