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

// Scenarios 1-3 measure the entry-bound engine as before max_bytes existed:
// 1M entries, and a byte bound (4 GiB) they never reach.
connscope::DnsCacheOptions entry_bound()
{
    connscope::DnsCacheOptions o;
    o.max_bytes = std::size_t{1} << 32;
    return o;
}

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
    // i-th one as index(i) from namespace netns_of(i); returns messages per second.
    auto feed = [&](connscope::DnsCorrelator &correlator, const Corpus &corpus, std::size_t count,
                    auto index, auto netns_of) {
        const auto start = Clock::now();
        for (std::size_t i = 0; i < count; ++i) {
            const std::size_t k = index(i);
            const std::uint8_t *p = corpus.bytes.data() + corpus.offsets[k];
            const std::size_t len = corpus.offsets[k + 1] - corpus.offsets[k];
            if (connscope::parse_dns_message(p, len, message) != connscope::DnsParseError::ok) {
                ++failures;
                continue;
            }
            correlator.observe(netns_of(i), t0 + i, message);
        }
        return static_cast<double>(count) / seconds_since(start);
    };
    const auto one_netns = [](std::size_t) { return netns; };

    // 1. The common case on a host: the same few thousand names answered
    // again and again (entries exist; their expiry and order are refreshed).
    double repeat_rate = 0;
    {
        auto correlator = connscope::make_default_correlator(entry_bound());
        feed(*correlator, chains, 10000, [](std::size_t i) { return i; }, one_netns);
        repeat_rate = feed(*correlator, chains, 1u << 22, [](std::size_t i) { return (i * 7919) % 10000; }, one_netns);
    }

    // 2. Every answer new, at capacity: 4 entries a message overflow the
    // default 1M-entry cache, so every insert also evicts.
    double full_rate = 0;
    {
        auto correlator = connscope::make_default_correlator(entry_bound());
        full_rate = feed(*correlator, chains, chains.size(), [](std::size_t i) { return i; }, one_netns);
        std::printf("  at capacity: %llu entries held, %llu evicted\n",
                    static_cast<unsigned long long>(correlator->stats().entries),
                    static_cast<unsigned long long>(correlator->stats().evictions));
    }

    // 3. Filling an empty cache with 1M distinct names on 1M distinct
    // addresses (nothing shared: the worst case for memory), then lookups.
    const std::size_t rss_before = rss_bytes();
    auto correlator = connscope::make_default_correlator(entry_bound());
    const double fill_rate = feed(*correlator, singles, singles.size(), [](std::size_t i) { return i; }, one_netns);
    const std::size_t rss_after = rss_bytes();
    const auto stats = correlator->stats();
    const double per_name_stats = static_cast<double>(stats.bytes_allocated) / static_cast<double>(stats.entries);
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
    correlator.reset();

    // 4. Issue 19: one user floods from 1000 network namespaces of its own
    // (the singles corpus, every answer new) while the host and another user
    // resolved names just before; default options (32 MiB, 1M entries), with
    // budgets keyed by the owner of each namespace.
    constexpr std::uint64_t host_netns = netns, other_netns = 4026540000ULL, flood_base = 4026600000ULL;
    connscope::DnsCacheOptions budgeted;
    budgeted.host_netns = host_netns;
    budgeted.budget_of = [](std::uint64_t ns) -> std::uint64_t { return ns >= flood_base ? 1000 : 2000; };
    auto shared = connscope::make_default_correlator(budgeted);
    constexpr std::size_t victims = 5000; // first 5k of chains: 10k addresses, 20k entries each
    feed(*shared, chains, victims, [](std::size_t i) { return i; }, [](std::size_t) { return host_netns; });
    feed(*shared, chains, victims, [](std::size_t i) { return i; }, [](std::size_t) { return other_netns; });
    std::vector<connscope::IpAddress> victim_ips(victims);
    for (std::size_t i = 0; i < victims; ++i) {
        const std::uint32_t v = 0x0a000000u + 2 * static_cast<std::uint32_t>(i);
        const std::uint8_t b[4] = {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                                   static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
        victim_ips[i] = connscope::IpAddress::v4(b);
    }
    // Flood in slices; after each, one lookup per victim address in both the
    // host and the other user's namespace.
    std::size_t victim_lookups = 0, victim_hits = 0;
    double flood_seconds = 0;
    const std::size_t slice = 1u << 16;
    for (std::size_t first = 0; first < singles.size(); first += slice) {
        const double rate = feed(*shared, singles, slice, [&](std::size_t i) { return first + i; },
                                 [&](std::size_t i) { return flood_base + (first + i) % 1000; });
        flood_seconds += static_cast<double>(slice) / rate;
        for (std::size_t i = 0; i < victims; i += 97) {
            for (std::uint64_t ns : {host_netns, other_netns}) {
                ++victim_lookups;
                victim_hits += shared->lookup(ns, victim_ips[i], t0 + 1).size() == 2;
            }
        }
    }
    const double flood_rate = static_cast<double>(singles.size()) / flood_seconds;
    const double hit_pct = 100.0 * static_cast<double>(victim_hits) / static_cast<double>(victim_lookups);
    const auto fs = shared->stats();

    std::printf("\n%-44s %14s %-9s %-12s %s\n", "measure", "value", "unit", "goal", "");
    row("answers parsed+inserted, 10k names repeating", repeat_rate, "msg/s", ">= 1M/s", repeat_rate >= 1e6);
    row("answers parsed+inserted, all new, filling", fill_rate, "msg/s", ">= 1M/s", fill_rate >= 1e6);
    row("answers parsed+inserted, all new, evicting", full_rate, "msg/s", ">= 1M/s", full_rate >= 1e6);
    row("lookups, 1024 hot addresses", hot_rate, "/s", ">= 10M/s", hot_rate >= 1e7);
    row("lookups, random over 1M addresses", random_rate, "/s", ">= 10M/s", random_rate >= 1e7);
    row("bytes per cached name (bytes_allocated)", per_name_stats, "B", "<= 256 B", per_name_stats <= 256);
    row("bytes per cached name (RSS delta)", per_name_rss, "B", "<= 256 B", per_name_rss <= 256);
    row("answers, flood from 1000 netns of one user", flood_rate, "msg/s", ">= 1M/s", flood_rate >= 1e6);
    row("other users' and host's lookups hitting", hit_pct, "%", "100 %", victim_hits == victim_lookups);
    row("stats().bytes at the bound (max 32 MiB)", static_cast<double>(fs.bytes) / 1048576.0, "MiB",
        "<= 32 MiB", fs.bytes <= budgeted.max_bytes);
    row("stats().bytes_allocated after the flood", static_cast<double>(fs.bytes_allocated) / 1048576.0,
        "MiB", "", true);
    std::printf("  flood: %llu entries (host %llu), %llu evicted own budget, %llu global, %llu expired, "
                "%llu budget groups\n",
                static_cast<unsigned long long>(fs.entries), static_cast<unsigned long long>(fs.host_entries),
                static_cast<unsigned long long>(fs.evicted_budget),
                static_cast<unsigned long long>(fs.evicted_global), static_cast<unsigned long long>(fs.expired),
                static_cast<unsigned long long>(fs.budget_groups));
    std::printf("\n%llu names held, %llu answers, %zu names found, %llu parse failures\n",
                static_cast<unsigned long long>(stats.entries),
                static_cast<unsigned long long>(stats.answers), found,
                static_cast<unsigned long long>(failures));
    return failures == 0 ? 0 : 1;
}
