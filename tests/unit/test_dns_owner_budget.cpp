// Issue 19's budget key: DNS records as the kernel writes them (each with the
// owner facts of its network namespace, struct dns_owner in bpf/dns.bpf.h),
// fed through DnsFeed into the default correlator with the budget_of a
// Session installs. Many network namespaces of one user are one budget;
// many users are many.
#include "dns_builder.hpp"

#include "records/dns_feed.hpp"
#include "wire.h"

#include <connscope/dns.hpp>
#include <connscope/session.hpp>

#include <catch2/catch.hpp>

#include <cstring>
#include <set>

using connscope::DnsCacheOptions;
using connscope::DnsCorrelator;
using connscope::detail::dns_budget_key;
using connscope::detail::DnsFeed;
using dnstest::Builder;
using dnstest::ip;
using Names = std::vector<std::string>;

namespace {

constexpr std::uint64_t s = 1000000000ULL;
constexpr std::uint64_t t0 = 1700000000ULL * s;
constexpr std::uint64_t boot = 5 * s;
constexpr std::int64_t epoch_offset = static_cast<std::int64_t>(t0 - boot);
constexpr std::uint32_t host = 4026531840u;

// Who a namespace belongs to, as its DNS record says it.
struct Owner {
    std::uint32_t net_ns;
    std::uint32_t uid;     // owner of the top user namespace below the initial one
    std::uint32_t user_ns; // that user namespace; 0 = the initial one
};

std::string addr(int i) { return "10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) + "." + std::to_string(i % 256); }

// A cache and the feed that fills it, wired as Session::Impl wires them.
struct Tracer {
    connscope::Stats counters;
    DnsFeed feed{counters};
    std::unique_ptr<DnsCorrelator> cache;

    explicit Tracer(std::size_t max_entries)
    {
        DnsCacheOptions o;
        o.max_entries = max_entries; // the byte bound stays far above
        o.host_netns = host;
        o.budget_of = [this](std::uint64_t netns) { return feed.budget_key(netns); };
        cache = connscope::make_default_correlator(o);
    }

    void answer(const Owner &who, const std::string &name, int i)
    {
        const auto msg = Builder().question(name).a(name, addr(i)).build();
        cs_dns_record h{};
        h.hdr.type = CS_REC_DNS;
        h.hdr.size = static_cast<std::uint32_t>(sizeof(h) + msg.size());
        h.hdr.boot_ns = boot;
        h.net_ns = who.net_ns;
        h.owner_uid = who.uid;
        h.owner_ns = who.user_ns;
        h.sport = 53;
        h.dport = 40000;
        h.captured = static_cast<std::uint16_t>(msg.size());
        h.orig_len = static_cast<std::uint32_t>(msg.size());
        std::vector<std::uint8_t> rec(sizeof(h) + msg.size());
        std::memcpy(rec.data(), &h, sizeof(h));
        std::memcpy(rec.data() + sizeof(h), msg.data(), msg.size());
        feed.record(rec.data(), rec.size(), epoch_offset, cache.get());
    }

    int held(const Owner &who, const std::string &tag, int first, int count)
    {
        int n = 0;
        for (int i = first; i < first + count; ++i)
            n += cache->lookup(who.net_ns, ip(addr(i)), t0) == Names{"n" + std::to_string(i) + "." + tag};
        return n;
    }
};

const Owner host_ns{host, 0, 0};
const Owner container{4026532500u, 0, 0};     // root's `ip netns add` or a container: no user namespace
const Owner victim{4026532600u, 2000, 4026532601u}; // uid 2000's rootless container

} // namespace

TEST_CASE("the budget key: what a user cannot multiply", "[dns][budget][owner]")
{
    // A network namespace of the initial user namespace is its own group (only root makes one).
    CHECK(dns_budget_key(4026532500u, 0, 0) == 4026532500u);
    // Below a top user namespace root made: that user namespace.
    CHECK(dns_budget_key(4026532500u, 0, 4026532700u) == (std::uint64_t{2} << 32 | 4026532700u));
    CHECK(dns_budget_key(4026532501u, 0, 4026532700u) == dns_budget_key(4026532500u, 0, 4026532700u));
    // Below one another user made: that user, whatever namespaces it makes.
    CHECK(dns_budget_key(4026532500u, 1000, 4026532700u) == (std::uint64_t{1} << 32 | 1000));
    CHECK(dns_budget_key(4026539999u, 1000, 4026538888u) == dns_budget_key(4026532500u, 1000, 4026532700u));
    // The kinds never meet: not even a uid equal to an inode number, or uid 0's namespaces.
    std::set<std::uint64_t> keys{dns_budget_key(1000, 0, 0), dns_budget_key(1, 1000, 7), dns_budget_key(1, 0, 1000),
                                 dns_budget_key(1, 4026532700u, 2), dns_budget_key(4026532700u, 0, 0)};
    CHECK(keys.size() == 5);
    // A record's key is used for its own namespace only.
    connscope::Stats counters;
    DnsFeed feed{counters};
    CHECK(feed.budget_key(77) == 77);
}

TEST_CASE("1000 network namespaces of one unprivileged user are one budget", "[dns][budget][owner]")
{
    Tracer t(10000); // host reserve 2500, pool 7500, share 2500
    for (int i = 0; i < 100; ++i)
        t.answer(host_ns, "n" + std::to_string(i) + ".host.test", i);
    for (int i = 0; i < 500; ++i)
        t.answer(victim, "n" + std::to_string(100000 + i) + ".victim.test", 100000 + i);
    for (int i = 0; i < 500; ++i)
        t.answer(container, "n" + std::to_string(200000 + i) + ".container.test", 200000 + i);
    // uid 1000: 1000 network namespaces in 100 top user namespaces of its own
    // (unshare -U -r -n, over and over), 50,000 distinct names.
    for (int i = 0; i < 50000; ++i) {
        const Owner flood{4026600000u + static_cast<std::uint32_t>(i % 1000), 1000,
                          4026700000u + static_cast<std::uint32_t>(i % 100)};
        t.answer(flood, "n" + std::to_string(300000 + i) + ".flood.test", 300000 + i);
    }
    const auto st = t.cache->stats();
    CHECK(t.counters.dns_messages == 51100);
    CHECK(st.budget_groups == 4); // host, uid 2000, the container, uid 1000
    // uid 1000 filled the pool's free room, then paid for every name after that itself.
    CHECK(st.entries == 100 + 7500);
    CHECK(st.evicted_budget == 50000 - (7500 - 1000));
    CHECK(st.evicted_global == 0);
    CHECK(t.held(host_ns, "host.test", 0, 100) == 100);
    CHECK(t.held(victim, "victim.test", 100000, 500) == 500);
    CHECK(t.held(container, "container.test", 200000, 500) == 500);
    // It keeps its newest.
    const Owner last{4026600000u + 49999 % 1000, 1000, 4026700000u + 49999 % 100};
    CHECK(t.held(last, "flood.test", 300000 + 49999, 1) == 1);
}

TEST_CASE("1000 users each within their share share the pool, never the host's reserve", "[dns][budget][owner]")
{
    Tracer t(10000);
    for (int i = 0; i < 100; ++i)
        t.answer(host_ns, "n" + std::to_string(i) + ".host.test", i);
    for (int i = 0; i < 500; ++i)
        t.answer(victim, "n" + std::to_string(100000 + i) + ".victim.test", 100000 + i);
    // 1000 distinct uids, one namespace each: what it takes to outweigh the
    // budgets is 1000 accounts on the host, not 1000 unshare calls.
    for (int i = 0; i < 50000; ++i) {
        const std::uint32_t u = static_cast<std::uint32_t>(i % 1000);
        const Owner flood{4026600000u + u, 10000 + u, 4026700000u + u};
        t.answer(flood, "n" + std::to_string(300000 + i) + ".flood.test", 300000 + i);
    }
    const auto st = t.cache->stats();
    CHECK(st.entries == 100 + 7500);
    // No group went over its share (50 names each): the pool went in LRU order.
    CHECK(st.evicted_budget == 0);
    CHECK(st.evicted_global == 500 + 50000 - 7500);
    CHECK(st.budget_groups <= 1 + 1 + 1000); // the host, uid 2000 while it holds any, the 1000
    CHECK(t.held(host_ns, "host.test", 0, 100) == 100);
    // Together they can push uid 2000's names out of the pool, as any LRU would.
    CHECK(t.held(victim, "victim.test", 100000, 500) < 500);
}

TEST_CASE("one user floods while others answer: only its names go", "[dns][budget][owner]")
{
    Tracer t(10000);
    // Interleaved: every 20th answer is another user's (10 of them), the rest uid 1000's.
    const auto other_of = [](int i) {
        const std::uint32_t u = static_cast<std::uint32_t>((i / 20) % 10);
        return Owner{4026550000u + u, 2000 + u, 4026560000u + u};
    };
    for (int i = 0; i < 60000; ++i) {
        if (i % 20 == 0) {
            t.answer(other_of(i), "n" + std::to_string(i) + ".other.test", i);
        } else {
            const Owner flood{4026600000u + static_cast<std::uint32_t>(i % 777), 1000, 4026700000u};
            t.answer(flood, "n" + std::to_string(i) + ".flood.test", i);
        }
    }
    const auto st = t.cache->stats();
    // 3000 names of 10 users, 300 each (within a share of 2500), all kept;
    // uid 1000 keeps the rest of the pool, 4500 (over its share).
    int kept = 0;
    for (int i = 0; i < 60000; i += 20)
        kept += t.held(other_of(i), "other.test", i, 1);
    CHECK(kept == 3000);
    CHECK(st.entries == 7500);
    CHECK(st.budget_groups == 11);
    CHECK(st.evicted_budget + st.evicted_global == 57000 - 4500);
    CHECK(st.evicted_budget > st.evicted_global);
}
