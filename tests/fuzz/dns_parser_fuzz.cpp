// libFuzzer entry point: every byte string is a DNS message and a TCP stream.
#include <connscope/dns.hpp>

#include "dns/tcp_stream.hpp"

#include <cstdint>
#include <cstring>

namespace {

void exercise(const std::uint8_t *data, std::size_t size, connscope::DnsCorrelator &correlator,
              connscope::DnsMessage &message)
{
    if (connscope::parse_dns_message(data, size, message) != connscope::DnsParseError::ok)
        return;
    const std::uint64_t t = 1000000000ULL;
    const std::uint64_t evictions = correlator.stats().evictions;
    correlator.observe(1, t, message);
    const bool evicted = correlator.stats().evictions != evictions;
    for (const auto &record : message.answers) {
        if (record.type == connscope::DnsType::cname)
            continue;
        // With a grace of one second every address just learned is live at
        // t, unless this very message overflowed the cache.
        if (!evicted && correlator.lookup(1, record.address, t).empty())
            __builtin_trap();
        if (!correlator.lookup(7, record.address, t).empty())
            __builtin_trap(); // another namespace
    }
    // Later, fuzzed TTLs have made some entries expire: removal paths run.
    for (const auto &record : message.answers)
        correlator.lookup(1, record.address, t + 30 * t);
    (void)correlator.stats();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    // A small cache shared across inputs so eviction and reuse paths run too.
    static auto correlator = [] {
        connscope::DnsCacheOptions options;
        options.max_entries = 64;
        options.grace = std::chrono::seconds(1);
        return connscope::make_default_correlator(options);
    }();
    static connscope::DnsMessage message;
    exercise(data, size, *correlator, message);

    // The same bytes as a TCP stream, cut into segments whose sizes come from
    // the input, so split, merged and out-of-order cases are all reached.
    static connscope::dns::TcpReassembler reassembler(8, 4096);
    connscope::dns::TcpFlowKey key{};
    key.sport = 53;
    key.dport = static_cast<std::uint16_t>(size % 5);
    std::uint32_t seq = 1000;
    std::size_t pos = 0;
    while (pos < size) {
        const std::size_t step = 1 + data[pos] % 97;
        const std::size_t len = step < size - pos ? step : size - pos;
        // Now and then replay a little or skip ahead.
        const std::uint32_t at = (data[pos] == 0xfe) ? seq - 3 : (data[pos] == 0xfd ? seq + 2 : seq);
        const bool fin = pos + len == size && (data[0] & 1);
        reassembler.feed(key, at, data + pos, len, fin,
                         [&](const std::uint8_t *m, std::size_t n) { exercise(m, n, *correlator, message); });
        seq += static_cast<std::uint32_t>(len);
        pos += len;
    }
    return 0;
}
