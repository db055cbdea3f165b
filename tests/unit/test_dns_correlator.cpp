#include "dns_builder.hpp"

#include <connscope/dns.hpp>
#include <connscope/error.hpp>

#include "dns/name_list.hpp"

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
constexpr std::uint64_t ns1 = 4026531840ULL;
constexpr std::uint64_t ns2 = 4026532000ULL;

DnsMessage msg(Builder b)
{
    DnsMessage m;
    auto bytes = b.build();
    REQUIRE(connscope::parse_dns_message(bytes.data(), bytes.size(), m) == DnsParseError::ok);
    return m;
}

std::unique_ptr<DnsCorrelator> make(std::size_t max_entries = 1u << 20, int grace_s = 60)
{
    DnsCacheOptions o;
    o.max_entries = max_entries;
    o.grace = std::chrono::seconds(grace_s);
    return connscope::make_default_correlator(o);
}

} // namespace

TEST_CASE("the captured answer gives question, CNAME target", "[dns][correlator]")
{
    auto c = make();
    DnsMessage m;
    REQUIRE(connscope::parse_dns_message(dnstest::captured_a_response.data(),
                                         dnstest::captured_a_response.size(), m) == DnsParseError::ok);
    c->observe(ns1, t0, m);
    CHECK(c->lookup(ns1, ip("127.0.0.88"), t0 + s) == Names{"www.example.test", "edge.cdn.test"});
    CHECK(c->lookup(ns1, ip("127.0.0.89"), t0 + s).empty());
    CHECK(c->stats().answers == 1);
    CHECK(c->stats().entries == 2);
}

TEST_CASE("chains come out question first whatever the record order", "[dns][correlator]")
{
    auto c = make();
    c->observe(ns1, t0,
               msg(Builder()
                       .question("www.shop.test")
                       .a("edge.cdn.test", "192.0.2.10")
                       .cname("shop.cdn.test", "edge.cdn.test")
                       .aaaa("edge.cdn.test", "2001:db8::10")
                       .cname("www.shop.test", "shop.cdn.test")));
    const Names chain{"www.shop.test", "shop.cdn.test", "edge.cdn.test"};
    CHECK(c->lookup(ns1, ip("192.0.2.10"), t0) == chain);
    CHECK(c->lookup(ns1, ip("2001:db8::10"), t0) == chain);
    CHECK(c->stats().entries == 6);
}

TEST_CASE("a chain with no matching question is followed backwards", "[dns][correlator]")
{
    auto c = make();
    c->observe(ns1, t0,
               msg(Builder()
                       .question("unrelated.test")
                       .cname("b.test", "c.test")
                       .a("c.test", "10.1.1.1")
                       .cname("a.test", "b.test")));
    CHECK(c->lookup(ns1, ip("10.1.1.1"), t0) == Names{"a.test", "b.test", "c.test"});
}

TEST_CASE("several questions each get their chain", "[dns][correlator]")
{
    auto c = make();
    c->observe(ns1, t0,
               msg(Builder()
                       .question("one.test")
                       .question("two.test")
                       .cname("two.test", "shared.test")
                       .cname("one.test", "shared.test")
                       .a("shared.test", "10.2.2.2")
                       .a("three.test", "10.3.3.3")));
    CHECK(c->lookup(ns1, ip("10.2.2.2"), t0) == Names{"one.test", "shared.test", "two.test"});
    CHECK(c->lookup(ns1, ip("10.3.3.3"), t0) == Names{"three.test"});
}

TEST_CASE("CNAME loops end", "[dns][correlator]")
{
    auto c = make();
    c->observe(ns1, t0,
               msg(Builder()
                       .question("q.test")
                       .cname("q.test", "x.test")
                       .cname("x.test", "y.test")
                       .cname("y.test", "q.test")
                       .a("y.test", "10.4.4.4")
                       .a("z.test", "10.5.5.5")
                       .cname("z.test", "w.test")
                       .cname("w.test", "z.test")));
    CHECK(c->lookup(ns1, ip("10.4.4.4"), t0) == Names{"q.test", "x.test", "y.test"});
    CHECK(c->lookup(ns1, ip("10.5.5.5"), t0) == Names{"w.test", "z.test"});
}

TEST_CASE("long shuffled CNAME chains among many CNAMEs", "[dns][correlator]")
{
    Builder b;
    b.question("c0.test");
    for (int i = 11; i >= 0; --i)
        b.cname("c" + std::to_string(i) + ".test", "c" + std::to_string(i + 1) + ".test");
    for (int i = 0; i < 10; ++i)
        b.cname("noise" + std::to_string(i) + ".test", "other" + std::to_string(i) + ".test");
    b.a("c12.test", "10.6.6.6");
    auto c = make();
    c->observe(ns1, t0, msg(b));
    Names expect;
    for (int i = 0; i <= 12; ++i)
        expect.push_back("c" + std::to_string(i) + ".test");
    CHECK(c->lookup(ns1, ip("10.6.6.6"), t0) == expect);
}

TEST_CASE("two names for one address: newest answer's chain first", "[dns][correlator]")
{
    auto c = make();
    c->observe(ns1, t0, msg(Builder().question("old.test").cname("old.test", "o.cdn").a("o.cdn", "10.7.7.7")));
    c->observe(ns1, t0 + s, msg(Builder().question("new.test").a("new.test", "10.7.7.7")));
    CHECK(c->lookup(ns1, ip("10.7.7.7"), t0 + 2 * s) == Names{"new.test", "old.test", "o.cdn"});

    // Asked again, the old name moves to the front, without duplicates.
    c->observe(ns1, t0 + 3 * s, msg(Builder().question("old.test").cname("old.test", "o.cdn").a("o.cdn", "10.7.7.7")));
    CHECK(c->lookup(ns1, ip("10.7.7.7"), t0 + 4 * s) == Names{"old.test", "o.cdn", "new.test"});
    CHECK(c->stats().entries == 3);
    CHECK(c->stats().answers == 3);
}

TEST_CASE("TTL and grace", "[dns][correlator]")
{
    auto c = make(1024, 60);
    c->observe(ns1, t0, msg(Builder().question("zero.test").a("zero.test", "10.8.0.1", 0)));
    c->observe(ns1, t0, msg(Builder().question("long.test").a("long.test", "10.8.0.2", 600)));
    c->observe(ns1, t0, msg(Builder().question("alias.test").cname("alias.test", "short.test", 3600)
                                .a("short.test", "10.8.0.3", 90)));

    CHECK(c->lookup(ns1, ip("10.8.0.1"), t0) == Names{"zero.test"});
    CHECK(c->lookup(ns1, ip("10.8.0.1"), t0 + 59 * s) == Names{"zero.test"});
    CHECK(c->lookup(ns1, ip("10.8.0.1"), t0 + 60 * s).empty());

    CHECK(c->lookup(ns1, ip("10.8.0.2"), t0 + 599 * s) == Names{"long.test"});
    CHECK(c->lookup(ns1, ip("10.8.0.2"), t0 + 600 * s).empty());

    // The chain lives as long as its shortest record.
    CHECK(c->lookup(ns1, ip("10.8.0.3"), t0 + 89 * s) == Names{"alias.test", "short.test"});
    CHECK(c->lookup(ns1, ip("10.8.0.3"), t0 + 91 * s).empty());
    CHECK(c->stats().entries == 0);
}

TEST_CASE("the same answer again extends the names' life", "[dns][correlator]")
{
    auto c = make(1024, 10);
    auto answer = Builder().question("w.test").cname("w.test", "e.cdn", 20).a("e.cdn", "10.15.0.1", 20);
    c->observe(ns1, t0, msg(answer));
    c->observe(ns1, t0 + 15 * s, msg(answer));
    CHECK(c->lookup(ns1, ip("10.15.0.1"), t0 + 30 * s) == Names{"w.test", "e.cdn"});
    CHECK(c->lookup(ns1, ip("10.15.0.1"), t0 + 35 * s).empty());
    CHECK(c->stats().entries == 0);
}

TEST_CASE("an expired newer answer leaves an older valid one", "[dns][correlator]")
{
    auto c = make(1024, 10);
    c->observe(ns1, t0, msg(Builder().question("long.test").a("long.test", "10.9.0.1", 1000)));
    c->observe(ns1, t0 + s, msg(Builder().question("short.test").a("short.test", "10.9.0.1", 0)));
    CHECK(c->lookup(ns1, ip("10.9.0.1"), t0 + 2 * s) == Names{"short.test", "long.test"});
    CHECK(c->lookup(ns1, ip("10.9.0.1"), t0 + 20 * s) == Names{"long.test"});
    // A later answer with a shorter TTL does not shorten an earlier promise.
    c->observe(ns1, t0 + 30 * s, msg(Builder().question("long.test").a("long.test", "10.9.0.1", 0)));
    CHECK(c->lookup(ns1, ip("10.9.0.1"), t0 + 500 * s) == Names{"long.test"});
}

TEST_CASE("entries are bounded and the least recently used go first", "[dns][correlator]")
{
    auto c = make(3);
    for (int i = 1; i <= 3; ++i)
        c->observe(ns1, t0, msg(Builder().question("h" + std::to_string(i)).a("h" + std::to_string(i),
                                                                              "10.10.0." + std::to_string(i))));
    CHECK(c->stats().entries == 3);
    CHECK(c->stats().evictions == 0);
    // Looking up h1 makes h2 the least recently used.
    CHECK(c->lookup(ns1, ip("10.10.0.1"), t0) == Names{"h1"});
    c->observe(ns1, t0, msg(Builder().question("h4").a("h4", "10.10.0.4")));
    CHECK(c->stats().entries == 3);
    CHECK(c->stats().evictions == 1);
    CHECK(c->lookup(ns1, ip("10.10.0.2"), t0).empty());
    CHECK(c->lookup(ns1, ip("10.10.0.1"), t0) == Names{"h1"});
    CHECK(c->lookup(ns1, ip("10.10.0.3"), t0) == Names{"h3"});
    CHECK(c->lookup(ns1, ip("10.10.0.4"), t0) == Names{"h4"});

    // A chain longer than the cache keeps its head.
    auto tiny = make(2);
    tiny->observe(ns1, t0, msg(Builder().question("a").cname("a", "b").cname("b", "c").a("c", "10.11.0.1")));
    CHECK(tiny->stats().entries == 2);
    CHECK(tiny->stats().evictions == 1);
    CHECK(tiny->lookup(ns1, ip("10.11.0.1"), t0) == Names{"a", "b"});
}

TEST_CASE("many entries through a small cache", "[dns][correlator]")
{
    auto c = make(1000);
    for (int i = 0; i < 5000; ++i) {
        const std::string name = "host" + std::to_string(i) + ".test";
        c->observe(ns1, t0, msg(Builder().question(name).a(name, "10.12." + std::to_string(i / 256) + "." +
                                                                     std::to_string(i % 256))));
    }
    CHECK(c->stats().entries == 1000);
    CHECK(c->stats().evictions == 4000);
    CHECK(c->lookup(ns1, ip("10.12.0.0"), t0).empty());
    CHECK(c->lookup(ns1, ip("10.12.19.135"), t0) == Names{"host4999.test"});
    CHECK(c->lookup(ns1, ip("10.12.15.160"), t0) == Names{"host4000.test"});
    CHECK(c->stats().bytes > 1000 * 32);
}

TEST_CASE("namespaces never see each other's names", "[dns][correlator]")
{
    auto c = make();
    c->observe(ns1, t0, msg(Builder().question("one.test").a("one.test", "10.13.0.1")));
    c->observe(ns2, t0, msg(Builder().question("two.test").a("two.test", "10.13.0.1")));
    CHECK(c->lookup(ns1, ip("10.13.0.1"), t0) == Names{"one.test"});
    CHECK(c->lookup(ns2, ip("10.13.0.1"), t0) == Names{"two.test"});
    CHECK(c->lookup(ns2 + 1, ip("10.13.0.1"), t0).empty());
}

TEST_CASE("IPv4-mapped IPv6 addresses are IPv4", "[dns][correlator]")
{
    auto c = make();
    c->observe(ns1, t0, msg(Builder().question("v4.test").a("v4.test", "10.14.0.1")));
    CHECK(c->lookup(ns1, ip("::ffff:10.14.0.1"), t0) == Names{"v4.test"});
    CHECK(c->lookup(ns1, ip("::10.14.0.1"), t0).empty());

    c->observe(ns1, t0, msg(Builder().question("m.test").aaaa("m.test", "::ffff:10.14.0.2")));
    CHECK(c->lookup(ns1, ip("10.14.0.2"), t0) == Names{"m.test"});
    CHECK(c->lookup(ns1, ip("::ffff:10.14.0.2"), t0) == Names{"m.test"});

    // Stray bytes past an IPv4 address's four do not matter.
    connscope::IpAddress dirty = ip("10.14.0.1");
    dirty.bytes[9] = 7;
    CHECK(c->lookup(ns1, dirty, t0) == Names{"v4.test"});
}

TEST_CASE("max_entries 0 is refused", "[dns][correlator]")
{
    DnsCacheOptions o;
    o.max_entries = 0;
    try {
        connscope::make_default_correlator(o);
        FAIL("no exception");
    } catch (const connscope::Error &e) {
        CHECK(e.code().value() == EINVAL);
    }
}

TEST_CASE("answers without addresses change nothing but the count", "[dns][correlator]")
{
    auto c = make();
    c->observe(ns1, t0, msg(Builder(1, 0x8183).question("nx.test")));
    c->observe(ns1, t0, msg(Builder().question("c.test").cname("c.test", "d.test")));
    CHECK(c->stats().answers == 2);
    CHECK(c->stats().entries == 0);
}

TEST_CASE("the Session's lookup into reused strings gives what lookup() gives", "[dns][correlator]")
{
    auto c = make();
    c->observe(ns1, t0,
               msg(Builder()
                       .question("www.shop.test")
                       .cname("www.shop.test", "shop.cdn.test")
                       .cname("shop.cdn.test", "a-rather-long-edge-name.cdn.test")
                       .a("a-rather-long-edge-name.cdn.test", "192.0.2.7")));
    c->observe(ns1, t0, msg(Builder().question("one.test").a("one.test", "192.0.2.8")));
    auto *into = dynamic_cast<connscope::detail::NameListLookup *>(c.get());
    REQUIRE(into != nullptr);

    std::vector<std::string> results{"stale", "names", "from", "before"};
    connscope::detail::NameList names;
    auto lookup = [&](const char *address) {
        names.start(results);
        into->lookup_into(ns1, ip(address), t0 + s, names);
        names.finish();
        CHECK(results == c->lookup(ns1, ip(address), t0 + s));
    };
    lookup("192.0.2.7");
    REQUIRE(results == Names{"www.shop.test", "shop.cdn.test", "a-rather-long-edge-name.cdn.test"});
    const char *long_name = results[2].data();
    lookup("192.0.2.8");
    CHECK(results == Names{"one.test"});
    lookup("192.0.2.99");
    CHECK(results.empty());
    // The strings given back wait, buffers and all, for the next longer list.
    lookup("192.0.2.7");
    CHECK(results == Names{"www.shop.test", "shop.cdn.test", "a-rather-long-edge-name.cdn.test"});
    const bool reused = results[0].data() == long_name || results[1].data() == long_name ||
                        results[2].data() == long_name;
    CHECK(reused);
}
