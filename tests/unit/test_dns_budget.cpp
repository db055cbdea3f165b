// The default correlator's budgets (host reserve, per-group shares), its byte
// bound and its per-reason eviction counters.
#include "dns_builder.hpp"

#include <connscope/dns.hpp>
#include <connscope/error.hpp>

#include <catch2/catch.hpp>

#include <cerrno>

using connscope::DnsCacheOptions;
using connscope::DnsCorrelator;
using connscope::DnsMessage;
using connscope::DnsParseError;
using dnstest::Builder;
using dnstest::ip;
using Names = std::vector<std::string>;

namespace {

constexpr std::uint64_t s = 1000000000ULL;
constexpr std::uint64_t t0 = 1700000000ULL * s;
constexpr std::uint64_t host = 4026531840ULL;
constexpr std::uint64_t other = 4026540000ULL; // uid 2000's namespace
constexpr std::uint64_t third = 4026541000ULL; // uid 3000's namespace
constexpr std::uint64_t flood_base = 4026600000ULL; // uid 1000's namespaces, 1000 of them

DnsMessage msg(Builder b)
{
    DnsMessage m;
    auto bytes = b.build();
    REQUIRE(connscope::parse_dns_message(bytes.data(), bytes.size(), m) == DnsParseError::ok);
    return m;
}

std::string addr(const char *prefix, int i)
{
    return std::string(prefix) + std::to_string(i / 256) + "." + std::to_string(i % 256);
}

// name<i>.<tag> at <prefix>i/256.i%256
void answer(DnsCorrelator &c, std::uint64_t netns, const std::string &tag, const char *prefix, int i,
            std::uint64_t when = t0, std::uint32_t ttl = 300)
{
    const std::string name = "name" + std::to_string(i) + "." + tag;
    c.observe(netns, when, msg(Builder().question(name).a(name, addr(prefix, i), ttl)));
}

bool holds(DnsCorrelator &c, std::uint64_t netns, const std::string &tag, const char *prefix, int i)
{
    return c.lookup(netns, ip(addr(prefix, i)), t0) == Names{"name" + std::to_string(i) + "." + tag};
}

int held(DnsCorrelator &c, std::uint64_t netns, const std::string &tag, const char *prefix, int count)
{
    int n = 0;
    for (int i = 0; i < count; ++i)
        n += holds(c, netns, tag, prefix, i);
    return n;
}

// The uid owning each namespace's user namespace, as a Session would learn it.
std::uint64_t owner(std::uint64_t netns)
{
    if (netns >= flood_base && netns < flood_base + 1000)
        return 1000;
    if (netns == third)
        return 3000;
    return netns == other ? 2000 : 0;
}

DnsCacheOptions budgeted()
{
    DnsCacheOptions o;
    o.max_entries = 1000; // host reserve 250, pool 750, share 250
    o.host_netns = host;
    o.budget_of = owner;
    return o;
}

} // namespace

TEST_CASE("a flood from 1000 namespaces of one user evicts only its own names", "[dns][budget]")
{
    auto c = connscope::make_default_correlator(budgeted());
    for (int i = 0; i < 100; ++i)
        answer(*c, host, "host.test", "10.1.", i);
    for (int i = 0; i < 50; ++i)
        answer(*c, other, "other.test", "10.2.", i);
    // 10 distinct names in each of 1000 namespaces, all owned by uid 1000.
    for (int i = 0; i < 10000; ++i)
        answer(*c, flood_base + static_cast<std::uint64_t>(i % 1000), "flood.test", "10.3.", i);

    auto st = c->stats();
    // The pool (750) filled with 700 of uid 1000's; over its share it then evicted itself.
    CHECK(st.entries == 850);
    CHECK(st.host_entries == 100);
    CHECK(st.evicted_budget == 10000 - 700);
    CHECK(st.evicted_global == 0);
    CHECK(st.evictions == 10000 - 700);
    CHECK(st.expired == 0);
    CHECK(st.budget_groups == 3);
    CHECK(held(*c, host, "host.test", "10.1.", 100) == 100);
    CHECK(held(*c, other, "other.test", "10.2.", 50) == 50);
    // uid 1000 keeps its newest 700.
    CHECK(holds(*c, flood_base + 9999 % 1000, "flood.test", "10.3.", 9999));
    CHECK(holds(*c, flood_base + 9300 % 1000, "flood.test", "10.3.", 9300));
    CHECK_FALSE(holds(*c, flood_base + 9299 % 1000, "flood.test", "10.3.", 9299));

    // uid 2000, within its share, takes its room from uid 1000, not from itself.
    for (int i = 50; i < 150; ++i)
        answer(*c, other, "other.test", "10.2.", i);
    st = c->stats();
    CHECK(st.evicted_global == 100);
    CHECK(st.evicted_budget == 9300);
    CHECK(held(*c, other, "other.test", "10.2.", 150) == 150);
    CHECK(held(*c, host, "host.test", "10.1.", 100) == 100);
    CHECK(st.entries == 850);

    // The host takes room from the pool while the cache is full: first the
    // free 150 entries, then 50 of the pool's over-share group.
    for (int i = 100; i < 300; ++i)
        answer(*c, host, "host.test", "10.1.", i);
    st = c->stats();
    CHECK(st.host_entries == 300);
    CHECK(st.entries == 1000);
    CHECK(st.evicted_global == 150);
    CHECK(held(*c, host, "host.test", "10.1.", 300) == 300);
    CHECK(held(*c, other, "other.test", "10.2.", 150) == 150);
}

TEST_CASE("room for a group within its share comes from the group over its share", "[dns][budget]")
{
    auto c = connscope::make_default_correlator(budgeted());
    // uid 2000's names are the pool's oldest and were never looked up.
    for (int i = 0; i < 50; ++i)
        answer(*c, other, "other.test", "10.2.", i);
    for (int i = 0; i < 10000; ++i)
        answer(*c, flood_base + static_cast<std::uint64_t>(i % 1000), "flood.test", "10.3.", i);
    for (int i = 0; i < 20; ++i)
        answer(*c, third, "third.test", "10.9.", i);
    const auto st = c->stats();
    CHECK(st.evicted_global == 20);
    CHECK(st.evicted_budget == 10000 - 700);
    CHECK(st.entries == 750);
    CHECK(held(*c, other, "other.test", "10.2.", 50) == 50);
    CHECK(held(*c, third, "third.test", "10.9.", 20) == 20);
    CHECK_FALSE(holds(*c, flood_base + 320, "flood.test", "10.3.", 9319));
    CHECK(holds(*c, flood_base + 320, "flood.test", "10.3.", 9320));
}

TEST_CASE("others take from the host only what it holds above its reserve", "[dns][budget]")
{
    auto c = connscope::make_default_correlator(budgeted());
    for (int i = 0; i < 900; ++i)
        answer(*c, host, "host.test", "10.1.", i);
    for (int i = 0; i < 2000; ++i)
        answer(*c, flood_base + static_cast<std::uint64_t>(i % 1000), "flood.test", "10.3.", i);
    const auto st = c->stats();
    // 100 free; 650 taken from the host (down to its reserve of 250); then
    // the pool was full and the group over its share evicted itself.
    CHECK(st.host_entries == 250);
    CHECK(st.entries == 1000);
    CHECK(st.evicted_global == 650);
    CHECK(st.evicted_budget == 1250);
    // The host lost its oldest.
    CHECK(held(*c, host, "host.test", "10.1.", 900) == 250);
    CHECK(holds(*c, host, "host.test", "10.1.", 650));
    CHECK_FALSE(holds(*c, host, "host.test", "10.1.", 649));
}

TEST_CASE("without budget_of, namespaces flood the pool but never the host's reserve", "[dns][budget]")
{
    DnsCacheOptions o = budgeted();
    o.budget_of = nullptr; // each namespace its own group: the pool is shared in LRU order
    auto c = connscope::make_default_correlator(o);
    for (int i = 0; i < 100; ++i)
        answer(*c, host, "host.test", "10.1.", i);
    for (int i = 0; i < 10000; ++i)
        answer(*c, flood_base + static_cast<std::uint64_t>(i % 1000), "flood.test", "10.3.", i);
    const auto st = c->stats();
    CHECK(st.entries == 850);
    CHECK(st.host_entries == 100);
    CHECK(st.evicted_global == 10000 - 750);
    CHECK(st.evicted_budget == 0);
    CHECK(held(*c, host, "host.test", "10.1.", 100) == 100);
    // Every namespace that still holds names is a budget group, and no more.
    CHECK(st.budget_groups <= 751);
    CHECK(st.budget_groups >= 76);
}

TEST_CASE("groups come and go without leaving budgets behind", "[dns][budget]")
{
    DnsCacheOptions o;
    o.grace = std::chrono::seconds(10);
    auto c = connscope::make_default_correlator(o);
    for (int i = 0; i < 1000; ++i)
        answer(*c, flood_base + static_cast<std::uint64_t>(i), "ns.test", "10.4.", i, t0, 0);
    CHECK(c->stats().budget_groups == 1000);
    for (int i = 0; i < 1000; ++i)
        CHECK(c->lookup(flood_base + static_cast<std::uint64_t>(i), ip(addr("10.4.", i)), t0 + 11 * s).empty());
    const auto st = c->stats();
    CHECK(st.budget_groups == 0);
    CHECK(st.entries == 0);
    CHECK(st.bytes == 0);
    CHECK(st.expired == 1000);
    CHECK(st.evictions == 0);
}

TEST_CASE("the byte bound holds under a flood of long names", "[dns][budget]")
{
    DnsCacheOptions o;
    o.max_bytes = 64 * 1024;
    auto c = connscope::make_default_correlator(o);
    const std::string label(62, 'x');
    const std::string suffix = label + "." + label + "." + label + ".test"; // 193 bytes
    for (int i = 0; i < 5000; ++i) {
        const std::string name = "n" + std::to_string(10000 + i) + "." + suffix; // 200 bytes
        REQUIRE(name.size() == 200);
        c->observe(host, t0, msg(Builder().question(name).a(name, addr("10.5.", i))));
        REQUIRE(c->stats().bytes <= o.max_bytes);
    }
    // Charged per entry: Entry 40 + Group 40 + Name slot 64 + text (200 + 8
    // rounded up to 16: 208) + 3 index slots of 22 = 418 bytes.
    const auto st = c->stats();
    CHECK(st.entries == 64 * 1024 / 418);
    CHECK(st.bytes == (64 * 1024 / 418) * 418);
    CHECK(st.evicted_budget == 5000 - 64 * 1024 / 418);
    CHECK(st.evicted_global == 0);
    CHECK(c->lookup(host, ip(addr("10.5.", 4999)), t0) == Names{"n14999." + suffix});
    CHECK(c->lookup(host, ip(addr("10.5.", 0)), t0).empty());
    // Short names: the same bytes hold more of them (Name text inline).
    for (int i = 0; i < 5000; ++i)
        answer(*c, host, "short.test", "10.6.", i);
    CHECK(c->stats().entries == 64 * 1024 / 210);
    CHECK(c->stats().bytes <= o.max_bytes);
}

TEST_CASE("the host's reserve holds in bytes too", "[dns][budget]")
{
    DnsCacheOptions o = budgeted();
    o.max_entries = 1u << 20;
    o.max_bytes = 100 * 210; // short names: 100 entries; reserve 25, pool 75, share 25
    auto c = connscope::make_default_correlator(o);
    for (int i = 0; i < 20; ++i)
        answer(*c, host, "host.test", "10.1.", i);
    for (int i = 0; i < 20; ++i)
        answer(*c, other, "other.test", "10.2.", i);
    for (int i = 0; i < 3000; ++i)
        answer(*c, flood_base + static_cast<std::uint64_t>(i % 1000), "flood.test", "10.3.", i);
    const auto st = c->stats();
    CHECK(st.host_entries == 20);
    CHECK(st.host_bytes == 20 * 210);
    CHECK(st.entries == 20 + 75);
    CHECK(st.evicted_budget == 3000 - 55);
    CHECK(st.evicted_global == 0);
    CHECK(held(*c, host, "host.test", "10.1.", 20) == 20);
    CHECK(held(*c, other, "other.test", "10.2.", 20) == 20);
}

TEST_CASE("expiry is counted apart from evictions", "[dns][budget]")
{
    DnsCacheOptions o;
    o.grace = std::chrono::seconds(10);
    o.host_netns = host;
    auto c = connscope::make_default_correlator(o);
    for (int i = 0; i < 5; ++i)
        answer(*c, host, "e.test", "10.7.", i, t0, 0);
    CHECK(c->lookup(host, ip(addr("10.7.", 2)), t0 + 11 * s).empty());
    CHECK(c->stats().expired == 1);
    // Each observe reaps up to 4 expired entries from the oldest end.
    answer(*c, host, "e.test", "10.7.", 9, t0 + 20 * s, 0);
    auto st = c->stats();
    CHECK(st.expired == 5);
    CHECK(st.entries == 1);
    CHECK(st.evictions == 0);
    CHECK(st.host_entries == 1);
    CHECK(st.bytes == 210);
}

TEST_CASE("budget options are checked", "[dns][budget]")
{
    const auto refused = [](DnsCacheOptions o) {
        try {
            connscope::make_default_correlator(o);
        } catch (const connscope::Error &e) {
            return e.code().value() == EINVAL;
        }
        return false;
    };
    DnsCacheOptions o;
    o.max_bytes = 4095;
    CHECK(refused(o));
    o = {};
    o.host_reserve_percent = 101;
    CHECK(refused(o));
    o = {};
    o.budget_share_percent = 0;
    CHECK(refused(o));
    o = {};
    o.budget_share_percent = 101;
    CHECK(refused(o));
    o = {};
    o.host_reserve_percent = 100;
    o.host_netns = host;
    o.max_entries = 10;
    auto c = connscope::make_default_correlator(o);
    // No room at all outside the host: the answer is counted, not stored.
    answer(*c, other, "o.test", "10.8.", 1);
    CHECK(c->stats().entries == 0);
    CHECK(c->stats().evicted_global == 1);
    CHECK(c->stats().budget_groups == 0);
    answer(*c, host, "h.test", "10.8.", 1);
    CHECK(c->stats().host_entries == 1);
}
