#include <connscope/address.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <random>

using connscope::InetEndpoint;
using connscope::IpAddress;
using connscope::SocketAddress;
using connscope::UnixEndpoint;
using connscope::UnknownAddress;

namespace {

std::string canon(const std::string &text)
{
    auto ip = IpAddress::parse(text);
    REQUIRE(ip.has_value());
    return ip->to_string();
}

} // namespace

TEST_CASE("IPv4 dotted quads parse and print", "[address]")
{
    auto ip = IpAddress::parse("192.0.2.255");
    REQUIRE(ip);
    CHECK(ip->family == IpAddress::Family::v4);
    CHECK(ip->bytes[0] == 192);
    CHECK(ip->bytes[3] == 255);
    CHECK(ip->bytes[4] == 0);
    CHECK(ip->to_string() == "192.0.2.255");
    CHECK(canon("0.0.0.0") == "0.0.0.0");

    const std::uint8_t raw[4] = {10, 1, 2, 3};
    CHECK(IpAddress::v4(raw).to_string() == "10.1.2.3");
    CHECK(IpAddress::v4(raw) == *IpAddress::parse("10.1.2.3"));
    CHECK(IpAddress::v4(raw) != *IpAddress::parse("10.1.2.4"));
}

TEST_CASE("garbage is not an address", "[address]")
{
    for (const char *bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", " 1.2.3.4",
                            "1.2.3.-4", "0x1.2.3.4", "abc", ":", ":::", "1:2:3:4:5:6:7:8:9",
                            "12345::", "1::2::3", "g::", "[::1]", "fe80::1%2", "::1.2.3",
                            "::1.2.3.4.5", "1:2:3:4:5:6:7:1.2.3.4", "::ffff:256.1.1.1", "1:",
                            ":1", "1.2.3.4:80",
                            "0000000000000000000000000000000000000000000000000000000000000::"}) {
        INFO(bad);
        CHECK_FALSE(IpAddress::parse(bad).has_value());
    }
    CHECK_FALSE(IpAddress::parse(std::string_view("1.2.3.4\0", 8)).has_value());
    CHECK_FALSE(IpAddress::parse(std::string_view("::1\0", 4)).has_value());
}

TEST_CASE("IPv6 text forms parse to RFC 5952 canonical text", "[address]")
{
    CHECK(canon("::") == "::");
    CHECK(canon("::1") == "::1");
    CHECK(canon("1::") == "1::");
    CHECK(canon("0:0:0:0:0:0:0:1") == "::1");
    CHECK(canon("2001:DB8::1") == "2001:db8::1");
    CHECK(canon("2001:0db8:0000:0000:0000:0000:0000:0001") == "2001:db8::1");
    // Longest run wins; on a tie the first.
    CHECK(canon("2001:db8:0:0:1:0:0:1") == "2001:db8::1:0:0:1");
    CHECK(canon("2001:0:0:1:0:0:0:1") == "2001:0:0:1::1");
    // A single zero group is never shortened.
    CHECK(canon("2001:db8:0:1:1:1:1:1") == "2001:db8:0:1:1:1:1:1");
    CHECK(canon("1:0:1:0:1:0:1:0") == "1:0:1:0:1:0:1:0");
    CHECK(canon("1:2:3:4:5:6:7::") == "1:2:3:4:5:6:7:0");
    CHECK(canon("::2:3:4:5:6:7:8") == "0:2:3:4:5:6:7:8");
    CHECK(canon("fe80::abcd:EF01") == "fe80::abcd:ef01");
    // Embedded IPv4: dotted only for v4-mapped addresses.
    CHECK(canon("::ffff:192.0.2.1") == "::ffff:192.0.2.1");
    CHECK(canon("::FFFF:c000:0201") == "::ffff:192.0.2.1");
    CHECK(canon("::192.0.2.1") == "::c000:201");
    CHECK(canon("64:ff9b::192.0.2.33") == "64:ff9b::c000:221");
    CHECK(canon("1:2:3:4:5:6:1.2.3.4") == "1:2:3:4:5:6:102:304");
}

TEST_CASE("IPv6 to_string agrees with parse on random addresses", "[address]")
{
    std::mt19937 rng(42);
    for (int i = 0; i < 20000; ++i) {
        std::uint8_t raw[16];
        for (int g = 0; g < 8; ++g) {
            // Mostly zero groups, so runs and ties of every length occur.
            const std::uint16_t v = (rng() % 3 == 0) ? static_cast<std::uint16_t>(rng()) : 0;
            raw[2 * g] = static_cast<std::uint8_t>(v >> 8);
            raw[2 * g + 1] = static_cast<std::uint8_t>(v);
        }
        const IpAddress ip = IpAddress::v6(raw);
        const std::string text = ip.to_string();
        INFO(text);
        auto back = IpAddress::parse(text);
        REQUIRE(back);
        CHECK(*back == ip);
        // glibc's inet_ntop is RFC 5952 except for the deprecated ::a.b.c.d form.
        char ref[INET6_ADDRSTRLEN];
        REQUIRE(inet_ntop(AF_INET6, raw, ref, sizeof(ref)) != nullptr);
        if (std::string(ref).find('.') == std::string::npos || ip.is_v4_mapped())
            CHECK(text == ref);
        CHECK(text.find("::") == text.rfind("::"));
    }
}

TEST_CASE("v4-mapped addresses", "[address]")
{
    auto mapped = IpAddress::parse("::ffff:10.0.0.1");
    REQUIRE(mapped);
    CHECK(mapped->is_v4_mapped());
    CHECK(mapped->unmapped() == *IpAddress::parse("10.0.0.1"));
    CHECK(mapped->unmapped().to_string() == "10.0.0.1");

    auto compat = IpAddress::parse("::10.0.0.1");
    REQUIRE(compat);
    CHECK_FALSE(compat->is_v4_mapped());
    CHECK(compat->unmapped() == *compat);
    CHECK_FALSE(IpAddress::parse("::fffe:10.0.0.1")->is_v4_mapped());
    CHECK_FALSE(IpAddress::parse("1::ffff:10.0.0.1")->is_v4_mapped());
    CHECK_FALSE(IpAddress::parse("10.0.0.1")->is_v4_mapped());
    CHECK(IpAddress::parse("10.0.0.1")->unmapped() == *IpAddress::parse("10.0.0.1"));
}

TEST_CASE("family names", "[address]")
{
    CHECK(connscope::family_name(InetEndpoint{*IpAddress::parse("1.2.3.4"), 80, 0, 0}) == "AF_INET");
    CHECK(connscope::family_name(InetEndpoint{*IpAddress::parse("::1"), 80, 0, 0}) == "AF_INET6");
    CHECK(connscope::family_name(UnixEndpoint{UnixEndpoint::Kind::path, "/x"}) == "AF_UNIX");
    CHECK(connscope::family_name(UnknownAddress{0, 0}) == "AF_UNSPEC");
    CHECK(connscope::family_name(UnknownAddress{1, 1}) == "AF_UNIX");
    CHECK(connscope::family_name(UnknownAddress{2, 4}) == "AF_INET");
    CHECK(connscope::family_name(UnknownAddress{10, 8}) == "AF_INET6");
    CHECK(connscope::family_name(UnknownAddress{16, 12}) == "AF_16");
    CHECK(connscope::family_name(UnknownAddress{65535, 2}) == "AF_65535");
}

TEST_CASE("socket addresses as text", "[address]")
{
    using connscope::to_string;
    CHECK(to_string(InetEndpoint{*IpAddress::parse("127.0.0.1"), 80, 0, 0}) == "127.0.0.1:80");
    CHECK(to_string(InetEndpoint{*IpAddress::parse("::1"), 443, 0, 0}) == "[::1]:443");
    CHECK(to_string(InetEndpoint{*IpAddress::parse("fe80::1"), 80, 0, 2}) == "[fe80::1%2]:80");
    CHECK(to_string(InetEndpoint{*IpAddress::parse("::ffff:1.2.3.4"), 0, 7, 0}) == "[::ffff:1.2.3.4]:0");
    CHECK(to_string(InetEndpoint{*IpAddress::parse("10.0.0.1"), 65535, 0, 0}) == "10.0.0.1:65535");

    CHECK(to_string(UnixEndpoint{UnixEndpoint::Kind::path, "/run/x.sock"}) == "/run/x.sock");
    CHECK(to_string(UnixEndpoint{UnixEndpoint::Kind::abstract, "name"}) == "@name");
    CHECK(to_string(UnixEndpoint{UnixEndpoint::Kind::abstract, std::string("a\0b", 3)}) == "@a\\x00b");
    CHECK(to_string(UnixEndpoint{UnixEndpoint::Kind::path, "/tmp/a\nb\x7f\xff"}) ==
          "/tmp/a\\x0ab\\x7f\\xff");
    CHECK(to_string(UnixEndpoint{UnixEndpoint::Kind::path, "/a\\b"}) == "/a\\x5cb");
    CHECK(to_string(UnixEndpoint{UnixEndpoint::Kind::unnamed, ""}) == "(unnamed)");

    CHECK(to_string(UnknownAddress{16, 12}) == "AF_16 (len 12)");
    CHECK(to_string(UnknownAddress{0, 1}) == "AF_UNSPEC (len 1)");
    CHECK(to_string(UnknownAddress{2, 4}) == "AF_INET (len 4)");
}
