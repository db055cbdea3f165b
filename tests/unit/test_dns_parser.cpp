#include "dns_builder.hpp"

#include <connscope/dns.hpp>

#include <catch2/catch.hpp>

#include <cstring>

using connscope::DnsMessage;
using connscope::DnsParseError;
using connscope::DnsType;
using dnstest::Builder;
using dnstest::Bytes;
using dnstest::ip;

namespace {

DnsParseError parse(const Bytes &b, DnsMessage &m)
{
    return connscope::parse_dns_message(b.data(), b.size(), m);
}

DnsParseError parse(const Bytes &b)
{
    DnsMessage m;
    return parse(b, m);
}

// A response header with the given counts, then the raw bytes.
Bytes raw(std::uint16_t qd, std::uint16_t an, const Bytes &body)
{
    Bytes b;
    dnstest::put16(b, 0x0001);
    dnstest::put16(b, 0x8180);
    dnstest::put16(b, qd);
    dnstest::put16(b, an);
    dnstest::put16(b, 0);
    dnstest::put16(b, 0);
    b.insert(b.end(), body.begin(), body.end());
    return b;
}

} // namespace

TEST_CASE("a response captured from dnsmasq", "[dns][parser]")
{
    DnsMessage m;
    REQUIRE(parse(dnstest::captured_a_response, m) == DnsParseError::ok);
    CHECK(m.id == 0x1234);
    CHECK(m.rcode == 0);
    REQUIRE(m.questions.size() == 1);
    CHECK(m.questions[0] == "www.example.test");
    REQUIRE(m.answers.size() == 2);
    CHECK(m.answers[0].type == DnsType::cname);
    CHECK(m.answers[0].name == "www.example.test");
    CHECK(m.answers[0].target == "edge.cdn.test");
    CHECK(m.answers[0].ttl == 30);
    CHECK(m.answers[1].type == DnsType::a);
    CHECK(m.answers[1].name == "edge.cdn.test");
    CHECK(m.answers[1].address == ip("127.0.0.88"));
    CHECK(m.answers[1].ttl == 30);

    REQUIRE(parse(dnstest::captured_aaaa_response, m) == DnsParseError::ok);
    CHECK(m.id == 0x1235);
    REQUIRE(m.answers.size() == 2);
    CHECK(m.answers[1].type == DnsType::aaaa);
    CHECK(m.answers[1].address == ip("2001:db8::88"));

    // Every strict prefix of a valid message is rejected as truncated.
    for (std::size_t n = 0; n < dnstest::captured_a_response.size(); ++n) {
        INFO(n);
        CHECK(connscope::parse_dns_message(dnstest::captured_a_response.data(), n, m) ==
              DnsParseError::truncated);
    }
}

TEST_CASE("names are lower-cased, have no trailing dot, and escape odd bytes", "[dns][parser]")
{
    DnsMessage m;
    REQUIRE(parse(Builder().question("WWW.Example.COM").a("WwW.eXample.com", "1.2.3.4").build(), m) ==
            DnsParseError::ok);
    CHECK(m.questions[0] == "www.example.com");
    CHECK(m.answers[0].name == "www.example.com");

    Bytes body = {3, 'a', '.', 'b', 2, 'x', 0x00, 0, 0, 1, 0, 1};
    REQUIRE(parse(raw(1, 0, body), m) == DnsParseError::ok);
    CHECK(m.questions[0] == "a\\046b.x\\000");

    REQUIRE(parse(raw(1, 0, {0, 0, 1, 0, 1}), m) == DnsParseError::ok);
    CHECK(m.questions[0].empty());
}

TEST_CASE("compression pointers are followed", "[dns][parser]")
{
    Bytes msg = Builder()
                    .compress()
                    .question("www.example.com")
                    .cname("www.example.com", "cdn.example.com", 60)
                    .cname("cdn.example.com", "edge.other.net", 60)
                    .a("edge.other.net", "192.0.2.7", 20)
                    .aaaa("edge.other.net", "2001:db8::7", 20)
                    .build();
    DnsMessage m;
    REQUIRE(parse(msg, m) == DnsParseError::ok);
    REQUIRE(m.answers.size() == 4);
    CHECK(m.answers[0].target == "cdn.example.com");
    CHECK(m.answers[1].name == "cdn.example.com");
    CHECK(m.answers[1].target == "edge.other.net");
    CHECK(m.answers[2].name == "edge.other.net");
    CHECK(m.answers[2].address == ip("192.0.2.7"));
    CHECK(m.answers[3].address == ip("2001:db8::7"));
    // Compression did happen: the same message without it is longer.
    CHECK(msg.size() < Builder()
                           .question("www.example.com")
                           .cname("www.example.com", "cdn.example.com", 60)
                           .cname("cdn.example.com", "edge.other.net", 60)
                           .a("edge.other.net", "192.0.2.7", 20)
                           .aaaa("edge.other.net", "2001:db8::7", 20)
                           .build()
                           .size());
}

TEST_CASE("hostile compression is rejected", "[dns][parser]")
{
    SECTION("pointer to itself")
    {
        CHECK(parse(raw(1, 0, {0xc0, 12, 0, 1, 0, 1})) == DnsParseError::bad_pointer);
    }
    SECTION("pointer past the end")
    {
        CHECK(parse(raw(1, 0, {0xff, 0xff, 0, 1, 0, 1})) == DnsParseError::bad_pointer);
        CHECK(parse(raw(1, 0, {0xc0, 18, 0, 1, 0, 1})) == DnsParseError::bad_pointer);
    }
    SECTION("forward pointer")
    {
        // The question points at a valid name that comes after it.
        CHECK(parse(raw(1, 0, {0xc0, 18, 0, 1, 0, 1, 1, 'a', 0})) == DnsParseError::bad_pointer);
    }
    SECTION("loop back into the same name")
    {
        // "a" then a pointer to the start of the same name: a cycle.
        CHECK(parse(raw(1, 0, {1, 'a', 0xc0, 12, 0, 1, 0, 1})) == DnsParseError::compression_loop);
    }
    SECTION("two names pointing at each other")
    {
        // Question at 12 points to the answer name at 18; that name points back.
        Bytes body = {0xc0, 18, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4};
        DnsParseError e = parse(raw(1, 1, body));
        CHECK((e == DnsParseError::bad_pointer || e == DnsParseError::compression_loop));
    }
    SECTION("pointer chains nested too deep")
    {
        // A skipped TXT record's RDATA holds 70 pointers, each to the one
        // before; the next record's owner points at the last of them.
        Bytes body = {1, 'a', 0, 0, 16, 0, 1};        // question "a" at 12, TXT IN
        body.insert(body.end(), {0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 0, 0, 140});
        const std::size_t base = 12 + body.size();
        for (std::size_t i = 0; i < 70; ++i) {
            const std::size_t target = i == 0 ? 12 : base + 2 * (i - 1);
            body.push_back(static_cast<std::uint8_t>(0xc0 | target >> 8));
            body.push_back(static_cast<std::uint8_t>(target));
        }
        const std::size_t last = base + 2 * 69;
        body.insert(body.end(), {static_cast<std::uint8_t>(0xc0 | last >> 8),
                                 static_cast<std::uint8_t>(last), 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2,
                                 3, 4});
        CHECK(parse(raw(1, 2, body)) == DnsParseError::compression_loop);

        // The same layout with a short chain is fine.
        Bytes ok = {1, 'a', 0, 0, 16, 0, 1, 0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 0, 0, 4};
        const std::size_t b2 = 12 + ok.size();
        ok.insert(ok.end(), {0xc0, 12, static_cast<std::uint8_t>(0xc0 | b2 >> 8),
                             static_cast<std::uint8_t>(b2)});
        const std::size_t l2 = b2 + 2;
        ok.insert(ok.end(), {static_cast<std::uint8_t>(0xc0 | l2 >> 8), static_cast<std::uint8_t>(l2),
                             0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4});
        DnsMessage m;
        REQUIRE(parse(raw(1, 2, ok), m) == DnsParseError::ok);
        REQUIRE(m.answers.size() == 1);
        CHECK(m.answers[0].name == "a");
    }
}

TEST_CASE("counts larger than the data and short records are truncated", "[dns][parser]")
{
    Bytes one = Builder().question("x.test").a("x.test", "1.1.1.1").build();
    Bytes more_answers = one;
    more_answers[7] = 2;
    CHECK(parse(more_answers) == DnsParseError::truncated);
    Bytes many = one;
    many[6] = 0xff;
    many[7] = 0xff;
    CHECK(parse(many) == DnsParseError::truncated);
    Bytes more_questions = one;
    more_questions[5] = 2;
    CHECK(parse(more_questions) != DnsParseError::ok);

    CHECK(parse(Bytes{0x12, 0x34, 0x81, 0x80}) == DnsParseError::truncated);
    CHECK(parse(raw(1, 0, {5, 'a', 'b'})) == DnsParseError::truncated);           // label runs out
    CHECK(parse(raw(1, 0, {1, 'a'})) == DnsParseError::truncated);                // no root label
    CHECK(parse(raw(1, 0, {1, 'a', 0, 0, 1})) == DnsParseError::truncated);       // short question
    CHECK(parse(raw(1, 0, {0xc0})) == DnsParseError::truncated);                  // half a pointer
    CHECK(parse(raw(0, 1, {0, 0, 1, 0, 1, 0, 0, 0, 1, 0})) == DnsParseError::truncated); // no RDLENGTH
    CHECK(parse(raw(0, 1, {0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3})) == DnsParseError::truncated);
    CHECK(connscope::parse_dns_message(nullptr, 0, *std::make_unique<DnsMessage>()) ==
          DnsParseError::truncated);
}

TEST_CASE("reserved label types are rejected", "[dns][parser]")
{
    CHECK(parse(raw(1, 0, {0x40, 'a', 0, 0, 1, 0, 1})) == DnsParseError::bad_label);
    CHECK(parse(raw(1, 0, {0x80, 'a', 0, 0, 1, 0, 1})) == DnsParseError::bad_label);
    CHECK(parse(raw(1, 0, {1, 'a', 0x41, 0, 0, 1, 0, 1})) == DnsParseError::bad_label);
}

TEST_CASE("names longer than 255 bytes are rejected", "[dns][parser]")
{
    const std::string l63(63, 'x');
    // 3 * 64 + 62 + 1 = 255 bytes on the wire: the longest legal name.
    const std::string longest = l63 + "." + l63 + "." + l63 + "." + std::string(61, 'y');
    DnsMessage m;
    REQUIRE(parse(Builder().question(longest).build(), m) == DnsParseError::ok);
    CHECK(m.questions[0] == longest);
    CHECK(parse(Builder().question(longest + "z").build()) == DnsParseError::name_too_long);

    // Reached through compression, the limit still holds.
    const std::string half = l63 + "." + l63;
    Bytes msg = Builder().compress().question(half).cname("a." + half, "b." + half).build();
    REQUIRE(parse(msg, m) == DnsParseError::ok);
    Bytes too_long = Builder().compress().question(half).cname(half + "." + half, "x").build();
    CHECK(parse(too_long) == DnsParseError::name_too_long);
}

TEST_CASE("queries are not responses", "[dns][parser]")
{
    CHECK(parse(Builder(1, 0x0100).question("x.test").build()) == DnsParseError::not_a_response);
    CHECK(parse(Builder(1, 0x8100).question("x.test").build()) == DnsParseError::ok);
}

TEST_CASE("RDLENGTH must fit the type", "[dns][parser]")
{
    CHECK(parse(Builder().record("x", 1, 1, {1, 2, 3, 4, 5}).build()) == DnsParseError::bad_rdata);
    CHECK(parse(Builder().record("x", 1, 1, {1, 2, 3}).build()) == DnsParseError::bad_rdata);
    CHECK(parse(Builder().record("x", 28, 1, {1, 2, 3, 4}).build()) == DnsParseError::bad_rdata);
    CHECK(parse(Builder().record("x", 5, 1, {}).build()) == DnsParseError::bad_rdata);
    // A CNAME whose name ends before its RDATA does ...
    CHECK(parse(Builder().record("x", 5, 1, {1, 'y', 0, 0xff}).build()) == DnsParseError::bad_rdata);
    // ... or runs on past it into the next record.
    Bytes spill = Builder().record("x", 5, 1, {1, 'y'}).a("z", "1.2.3.4").build();
    CHECK(parse(spill) == DnsParseError::bad_rdata);
    // Exactly one name, compressed, is right.
    DnsMessage m;
    Bytes ok = raw(1, 1, {1, 'q', 0, 0, 1, 0, 1, 0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 9, 0, 4, 1, 'c', 0xc0, 12});
    REQUIRE(parse(ok, m) == DnsParseError::ok);
    CHECK(m.answers[0].target == "c.q");
    CHECK(m.answers[0].ttl == 9);
}

TEST_CASE("other types, classes and sections are skipped", "[dns][parser]")
{
    Bytes msg = Builder()
                    .question("x.test")
                    .record("x.test", 16, 60, {3, 'a', 'b', 'c'})             // TXT
                    .a("x.test", "10.0.0.1", 60)
                    .record("x.test", 1, 60, {9, 9, 9, 9}, 3)                  // CHAOS class A
                    .record("x.test", 15, 60, {0, 10, 1, 'm', 0})              // MX
                    .aaaa("x.test", "::ffff:10.0.0.2", 60)
                    .build();
    // Authority count says one more record, which is not there: never read.
    msg[9] = 1;
    DnsMessage m;
    REQUIRE(parse(msg, m) == DnsParseError::ok);
    REQUIRE(m.answers.size() == 2);
    CHECK(m.answers[0].address == ip("10.0.0.1"));
    CHECK(m.answers[1].type == DnsType::aaaa);
    CHECK(m.answers[1].address == ip("::ffff:10.0.0.2"));
}

TEST_CASE("header fields, TTL sign bit and message reuse", "[dns][parser]")
{
    DnsMessage m;
    REQUIRE(parse(Builder(0xbeef, 0x8183).question("nx.test").build(), m) == DnsParseError::ok);
    CHECK(m.id == 0xbeef);
    CHECK(m.rcode == 3);
    CHECK(m.answers.empty());

    REQUIRE(parse(Builder().question("t").a("t", "1.2.3.4", 0x80000001u).a("t", "1.2.3.5", 0x7fffffffu).build(),
                  m) == DnsParseError::ok);
    REQUIRE(m.answers.size() == 2);
    CHECK(m.answers[0].ttl == 0);
    CHECK(m.answers[1].ttl == 0x7fffffffu);

    // A reused message holds only the new contents.
    REQUIRE(parse(Builder().question("only.test").build(), m) == DnsParseError::ok);
    CHECK(m.answers.empty());
    CHECK(m.questions == std::vector<std::string>{"only.test"});
    REQUIRE(parse(Builder().question("a").question("b").cname("a", "b").build(), m) == DnsParseError::ok);
    CHECK(m.questions == std::vector<std::string>{"a", "b"});
    REQUIRE(m.answers.size() == 1);
    CHECK(m.answers[0].address == connscope::IpAddress{});
}

TEST_CASE("parse errors have names", "[dns][parser]")
{
    using connscope::to_string;
    CHECK(std::strcmp(to_string(DnsParseError::ok), "ok") == 0);
    CHECK(std::strcmp(to_string(DnsParseError::truncated), "truncated") == 0);
    CHECK(std::strcmp(to_string(DnsParseError::not_a_response), "not_a_response") == 0);
    CHECK(std::strcmp(to_string(DnsParseError::bad_label), "bad_label") == 0);
    CHECK(std::strcmp(to_string(DnsParseError::bad_pointer), "bad_pointer") == 0);
    CHECK(std::strcmp(to_string(DnsParseError::compression_loop), "compression_loop") == 0);
    CHECK(std::strcmp(to_string(DnsParseError::name_too_long), "name_too_long") == 0);
    CHECK(std::strcmp(to_string(DnsParseError::bad_rdata), "bad_rdata") == 0);
    CHECK(std::strcmp(to_string(static_cast<DnsParseError>(200)), "unknown") == 0);
}
