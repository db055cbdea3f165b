// Throughput and memory of the default DNS engine (parser + correlator).
// Prints a table of measured figures next to their goals.
#include <connscope/dns.hpp>

#include <unistd.h>

#include <ctime>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

// CPU time of this thread: the goals are per core, and this keeps the figures
// meaningful on a machine busy with other work.
struct Clock {
    using time_point = double;
    static double now()
    {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
    }
};
constexpr std::uint64_t netns = 4026531840ULL;
constexpr std::uint64_t t0 = 1700000000ULL * 1000000000ULL;

double seconds_since(Clock::time_point start)
{
    return Clock::now() - start;
}

std::size_t rss_bytes()
{
    std::ifstream statm("/proc/self/statm");
    std::size_t size = 0, resident = 0;
    statm >> size >> resident;
    return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// Messages laid end to end in one buffer, so building them costs no
// allocation per message and does not disturb the RSS measurement.
struct Corpus {
    std::vector<std::uint8_t> bytes;
    std::vector<std::uint32_t> offsets{0};

    void u16(unsigned v)
    {
        bytes.push_back(static_cast<std::uint8_t>(v >> 8));
        bytes.push_back(static_cast<std::uint8_t>(v));
    }
    void name(const std::string &text)
    {
        std::size_t pos = 0;
        while (pos <= text.size()) {
            std::size_t dot = text.find('.', pos);
            if (dot == std::string::npos)
                dot = text.size();
            bytes.push_back(static_cast<std::uint8_t>(dot - pos));
            bytes.insert(bytes.end(), text.begin() + static_cast<long>(pos), text.begin() + static_cast<long>(dot));
            pos = dot + 1;
        }
        bytes.push_back(0);
    }
    void record_header(unsigned owner_offset, unsigned type, unsigned rdlength)
    {
        u16(0xc000 | owner_offset);
        u16(type);
        u16(1);
        u16(0);
        u16(300);
        u16(rdlength);
    }
    // question -> CNAME target -> one A per address
    void add(std::uint32_t id, const std::string &question, const std::string &target,
             const std::vector<std::uint32_t> &ipv4s)
    {
        const std::size_t start = bytes.size();
        u16(id & 0xffff);
        u16(0x8180);
        u16(1);
        u16(static_cast<unsigned>((target.empty() ? 0 : 1) + ipv4s.size()));
        u16(0);
        u16(0);
        name(question);
        u16(1);
        u16(1);
        unsigned owner = 12;
        if (!target.empty()) {
            record_header(12, 5, static_cast<unsigned>(target.size() + 2));
            owner = static_cast<unsigned>(bytes.size() - start);
            name(target);
        }
        for (std::uint32_t ip : ipv4s) {
            record_header(owner, 1, 4);
            for (int shift = 24; shift >= 0; shift -= 8)
                bytes.push_back(static_cast<std::uint8_t>(ip >> shift));
        }
        offsets.push_back(static_cast<std::uint32_t>(bytes.size()));
    }
    std::size_t size() const { return offsets.size() - 1; }
};

void row(const char *what, double value, const char *unit, const char *goal, bool met)
{
    std::printf("%-44s %14.1f %-9s %-12s %s\n", what, value, unit, goal, met ? "met" : "NOT MET");
}

} // namespace

int main()
{
    constexpr std::uint32_t n = 1u << 20;
    std::printf("building %u + %u messages...\n", n, n);
    // A common shape: a question, a CNAME to a CDN name, two A records.
    Corpus chains;
    for (std::uint32_t i = 0; i < n; ++i)
        chains.add(i, "app-" + std::to_string(i) + ".example.com", "app-" + std::to_string(i) + ".edge.cdn.net",
                   {0x0a000000u + 2 * i, 0x0a000000u + 2 * i + 1});
    // Worst case for memory: one distinct name per distinct address, nothing shared.
    Corpus singles;
    for (std::uint32_t i = 0; i < n; ++i)
        singles.add(i, "host-" + std::to_string(i) + ".example.com", "", {0x0b000000u + i});

    connscope::DnsMessage message;
    std::uint64_t failures = 0;
    // Parses and observes messages [first, first + count) of a corpus, the
    // i-th one as index(i); returns messages per second.
    auto feed = [&](connscope::DnsCorrelator &correlator, const Corpus &corpus, std::size_t count,
                    auto index) {
        const auto start = Clock::now();
        for (std::size_t i = 0; i < count; ++i) {
            const std::size_t k = index(i);
            const std::uint8_t *p = corpus.bytes.data() + corpus.offsets[k];
            const std::size_t len = corpus.offsets[k + 1] - corpus.offsets[k];
            if (connscope::parse_dns_message(p, len, message) != connscope::DnsParseError::ok) {
                ++failures;
                continue;
            }
            correlator.observe(netns, t0 + i, message);
        }
        return static_cast<double>(count) / seconds_since(start);
    };

    // 1. The common case on a host: the same few thousand names answered
    // again and again (entries exist; their expiry and order are refreshed).
    double repeat_rate = 0;
    {
        auto correlator = connscope::make_default_correlator();
        feed(*correlator, chains, 10000, [](std::size_t i) { return i; });
        repeat_rate = feed(*correlator, chains, 1u << 22, [](std::size_t i) { return (i * 7919) % 10000; });
    }

    // 2. Every answer new, at capacity: 4 entries a message overflow the
    // default 1M-entry cache, so every insert also evicts.
    double full_rate = 0;
    {
        auto correlator = connscope::make_default_correlator();
        full_rate = feed(*correlator, chains, chains.size(), [](std::size_t i) { return i; });
        std::printf("  at capacity: %llu entries held, %llu evicted\n",
                    static_cast<unsigned long long>(correlator->stats().entries),
                    static_cast<unsigned long long>(correlator->stats().evictions));
    }

    // 3. Filling an empty cache with 1M distinct names on 1M distinct
    // addresses (nothing shared: the worst case for memory), then lookups.
    const std::size_t rss_before = rss_bytes();
    auto correlator = connscope::make_default_correlator();
    const double fill_rate = feed(*correlator, singles, singles.size(), [](std::size_t i) { return i; });
    const std::size_t rss_after = rss_bytes();
    const auto stats = correlator->stats();
    const double per_name_stats = static_cast<double>(stats.bytes) / static_cast<double>(stats.entries);
    const double per_name_rss =
        static_cast<double>(rss_after - rss_before) / static_cast<double>(stats.entries);

    std::mt19937 rng(1);
    std::vector<connscope::IpAddress> random_ips(1u << 22), hot_ips(1u << 10);
    for (auto &ip : random_ips) {
        const std::uint32_t v = 0x0b000000u + rng() % n;
        const std::uint8_t b[4] = {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                                   static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
        ip = connscope::IpAddress::v4(b);
    }
    for (std::size_t i = 0; i < hot_ips.size(); ++i)
        hot_ips[i] = random_ips[i];

    std::size_t found = 0;
    auto run_lookups = [&](const std::vector<connscope::IpAddress> &ips, std::size_t count) {
        const auto start = Clock::now();
        for (std::size_t i = 0; i < count; ++i)
            found += correlator->lookup(netns, ips[i & (ips.size() - 1)], t0 + 1).size();
        return static_cast<double>(count) / seconds_since(start);
    };
    const double hot_rate = run_lookups(hot_ips, 1u << 24);
    const double random_rate = run_lookups(random_ips, 1u << 22);

    std::printf("\n%-44s %14s %-9s %-12s %s\n", "measure", "value", "unit", "goal", "");
    row("answers parsed+inserted, 10k names repeating", repeat_rate, "msg/s", ">= 1M/s", repeat_rate >= 1e6);
    row("answers parsed+inserted, all new, filling", fill_rate, "msg/s", ">= 1M/s", fill_rate >= 1e6);
    row("answers parsed+inserted, all new, evicting", full_rate, "msg/s", ">= 1M/s", full_rate >= 1e6);
    row("lookups, 1024 hot addresses", hot_rate, "/s", ">= 10M/s", hot_rate >= 1e7);
    row("lookups, random over 1M addresses", random_rate, "/s", ">= 10M/s", random_rate >= 1e7);
    row("bytes per cached name (stats().bytes)", per_name_stats, "B", "<= 256 B", per_name_stats <= 256);
    row("bytes per cached name (RSS delta)", per_name_rss, "B", "<= 256 B", per_name_rss <= 256);
    std::printf("\n%llu names held, %llu answers, %zu names found, %llu parse failures\n",
                static_cast<unsigned long long>(stats.entries),
                static_cast<unsigned long long>(stats.answers), found,
                static_cast<unsigned long long>(failures));
    return failures == 0 ? 0 : 1;
}
