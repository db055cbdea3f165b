// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "dns_feed.hpp"

#include "decoder.hpp"

namespace connscope::detail {

std::uint64_t dns_budget_key(std::uint32_t net_ns, std::uint32_t owner_uid, std::uint32_t owner_ns)
{
    if (owner_ns == 0)
        return net_ns;
    if (owner_uid == 0)
        return std::uint64_t{2} << 32 | owner_ns;
    return std::uint64_t{1} << 32 | owner_uid;
}

void DnsFeed::observe(std::uint64_t netns, std::uint64_t time_ns, const std::uint8_t *msg, std::size_t len,
                      DnsCorrelator *correlator)
{
    if (parse_dns_message(msg, len, message_) != DnsParseError::ok) {
        ++counters_.dns_malformed;
        return;
    }
    ++counters_.dns_messages;
    if (correlator)
        correlator->observe(netns, time_ns, message_);
}

void DnsFeed::record(const void *data, std::size_t size, std::int64_t epoch_offset_ns, DnsCorrelator *correlator)
{
    DnsRecordView rec;
    if (!decode_dns(data, size, rec)) {
        ++counters_.decode_errors;
        return;
    }
    const cs_dns_record &h = rec.header;
    const std::uint64_t time_ns = boot_to_epoch_ns(h.hdr.boot_ns, epoch_offset_ns);
    key_netns_ = h.net_ns;
    key_ = dns_budget_key(h.net_ns, h.owner_uid, h.owner_ns);
    const bool truncated = h.flags & CS_DNS_TRUNCATED;
    if (truncated)
        ++counters_.dns_truncated;
    if (!(h.flags & CS_DNS_TCP)) {
        if (!truncated)
            observe(h.net_ns, time_ns, rec.payload, h.captured, correlator);
        return;
    }
    dns::TcpFlowKey key;
    key.netns = h.net_ns;
    const bool v6 = h.flags & CS_DNS_IPV6;
    key.src = v6 ? IpAddress::v6(h.saddr) : IpAddress::v4(h.saddr);
    key.dst = v6 ? IpAddress::v6(h.daddr) : IpAddress::v4(h.daddr);
    key.sport = h.sport;
    key.dport = h.dport;
    // A truncated segment leaves a hole in the stream: end the flow there.
    const bool fin = (h.flags & CS_DNS_TCP_FIN) || truncated;
    tcp_.feed(key, h.tcp_seq, rec.payload, truncated ? 0 : h.captured, fin,
              [&](const std::uint8_t *msg, std::size_t len) { observe(h.net_ns, time_ns, msg, len, correlator); });
}

} // namespace connscope::detail
