// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Ring records built by hand, decoded as the Session decodes them.
#include <catch2/catch.hpp>

#include "records/decoder.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <tuple>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <vector>

using namespace connscope;
using namespace connscope::detail;

namespace {

cs_connect_record make_connect()
{
    cs_connect_record r{};
    r.hdr.type = CS_REC_CONNECT;
    r.hdr.size = sizeof(r);
    r.hdr.boot_ns = 1000;
    r.proc.pid = 10;
    r.proc.tid = 11;
    r.proc.ppid = 1;
    r.proc.uid = 1000;
    r.proc.gid = 100;
    r.proc.cgroup_id = 77;
    r.proc.mnt_ns = 1;
    r.proc.net_ns = 2;
    r.proc.pid_ns = 3;
    r.proc.user_ns = 4;
    r.proc.uts_ns = 5;
    r.proc.ipc_ns = 6;
    r.proc.cgroup_ns = 7;
    std::memcpy(r.proc.comm, "curl", 4);
    r.sockfd = 5;
    r.sock_type = SOCK_STREAM;
    r.hook = CS_HOOK_CGROUP;
    r.connect_id = 42;
    return r;
}

cs_outcome_record make_outcome()
{
    cs_outcome_record r{};
    r.hdr.type = CS_REC_OUTCOME;
    r.hdr.size = sizeof(r);
    r.hdr.boot_ns = 9000;
    r.out.connect_id = 42;
    r.out.attempt_boot_ns = 1000;
    r.out.end_boot_ns = 3500;
    r.out.cookie = 4097;
    r.out.pid = 10;
    r.out.tid = 11;
    r.out.via = CS_VIA_CONNECT;
    return r;
}

} // namespace

TEST_CASE("a connect record decodes field by field")
{
    auto r = make_connect();
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(443);
    inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
    std::memcpy(r.addr, &sin, sizeof(sin));
    r.addrlen = sizeof(sin);

    SecuritySocketConnect ev;
    ev.process.container_id = "left from the event decoded before";
    REQUIRE(decode_connect(&r, sizeof(r), 5000, ev));
    CHECK(ev.process.timestamp_ns == 6000);
    CHECK(ev.process.pid == 10);
    CHECK(ev.process.tid == 11);
    CHECK(ev.process.ppid == 1);
    CHECK(ev.process.uid == 1000);
    CHECK(ev.process.gid == 100);
    CHECK(ev.process.comm == "curl");
    CHECK(ev.process.cgroup_id == 77);
    // The Session resolves it; the decoder leaves none from a reused event.
    CHECK(ev.process.container_id.empty());
    CHECK(ev.process.ns.mnt == 1);
    CHECK(ev.process.ns.net == 2);
    CHECK(ev.process.ns.pid == 3);
    CHECK(ev.process.ns.user == 4);
    CHECK(ev.process.ns.uts == 5);
    CHECK(ev.process.ns.ipc == 6);
    CHECK(ev.process.ns.cgroup == 7);
    CHECK(ev.sockfd == 5);
    CHECK(ev.type == SocketType::stream);
    CHECK_FALSE(ev.toctou);
    auto &ep = std::get<InetEndpoint>(ev.remote_addr);
    CHECK(ep.ip.to_string() == "10.1.2.3");
    CHECK(ep.port == 443);
}

TEST_CASE("a comm of 16 bytes without NUL stays within its field")
{
    auto r = make_connect();
    std::memset(r.proc.comm, 'x', sizeof(r.proc.comm));
    SecuritySocketConnect ev;
    REQUIRE(decode_connect(&r, sizeof(r), 0, ev));
    CHECK(ev.process.comm == std::string(16, 'x'));
}

TEST_CASE("malformed records are rejected, never read past")
{
    auto r = make_connect();
    SecuritySocketConnect ev;
    CHECK_FALSE(decode_connect(&r, sizeof(r) - 1, 0, ev));
    r.hdr.size = sizeof(r) + 8;
    CHECK(record_type(&r, sizeof(r)) == 0);
    CHECK_FALSE(decode_connect(&r, sizeof(r), 0, ev));
    r.hdr.size = 4;
    CHECK(record_type(&r, sizeof(r)) == 0);
    CHECK(record_type(&r, 3) == 0);

    cs_dns_record d{};
    d.hdr.type = CS_REC_DNS;
    d.hdr.size = sizeof(d) + 10;
    d.captured = 10;
    d.orig_len = 10;
    DnsRecordView view;
    std::vector<std::uint8_t> buf(sizeof(d) + 10);
    std::memcpy(buf.data(), &d, sizeof(d));
    CHECK(decode_dns(buf.data(), buf.size(), view));
    CHECK(view.payload == buf.data() + sizeof(d));
    CHECK_FALSE(decode_dns(buf.data(), buf.size() - 1, view)); // payload cut short
    d.captured = 11;                                           // disagrees with size
    std::memcpy(buf.data(), &d, sizeof(d));
    CHECK_FALSE(decode_dns(buf.data(), buf.size(), view));
}

TEST_CASE("address rules: short lengths, families, UNIX kinds")
{
    std::uint8_t raw[CS_SOCKADDR_MAX] = {};
    auto set_family = [&](std::uint16_t f) { std::memcpy(raw, &f, 2); };

    SECTION("AF_INET needs 16 bytes")
    {
        set_family(AF_INET);
        CHECK(std::holds_alternative<InetEndpoint>(decode_sockaddr(raw, 16, false)));
        auto short_addr = decode_sockaddr(raw, 15, false);
        REQUIRE(std::holds_alternative<UnknownAddress>(short_addr));
        CHECK(std::get<UnknownAddress>(short_addr).family == AF_INET);
        CHECK(std::get<UnknownAddress>(short_addr).length == 15);
    }
    SECTION("AF_INET6: 24 bytes without scope id, 28 with")
    {
        sockaddr_in6 sin6{};
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(53);
        sin6.sin6_scope_id = 3;
        inet_pton(AF_INET6, "fe80::1", &sin6.sin6_addr);
        std::memcpy(raw, &sin6, sizeof(sin6));
        auto full = std::get<InetEndpoint>(decode_sockaddr(raw, 28, false));
        CHECK(full.scope_id == 3);
        CHECK(full.port == 53);
        CHECK(to_string(SocketAddress{full}) == "[fe80::1%3]:53");
        auto rfc2133 = std::get<InetEndpoint>(decode_sockaddr(raw, 24, false));
        CHECK(rfc2133.scope_id == 0);
        CHECK(std::holds_alternative<UnknownAddress>(decode_sockaddr(raw, 23, false)));
    }
    SECTION("AF_UNIX: unnamed, abstract, path, 108 bytes without NUL")
    {
        set_family(AF_UNIX);
        CHECK(std::get<UnixEndpoint>(decode_sockaddr(raw, 2, false)).kind == UnixEndpoint::Kind::unnamed);
        std::memcpy(raw + 3, "abc", 3);
        auto abs = std::get<UnixEndpoint>(decode_sockaddr(raw, 6, false));
        CHECK(abs.kind == UnixEndpoint::Kind::abstract);
        CHECK(abs.name == "abc");
        std::memset(raw + 2, 'p', 108);
        auto full = std::get<UnixEndpoint>(decode_sockaddr(raw, 110, false));
        CHECK(full.kind == UnixEndpoint::Kind::path);
        CHECK(full.name == std::string(108, 'p'));
        // A longer addrlen than sockaddr_un still reads no more than sun_path.
        auto over = std::get<UnixEndpoint>(decode_sockaddr(raw, 128, false));
        CHECK(over.name.size() == 108);
        raw[2 + 5] = '\0';
        CHECK(std::get<UnixEndpoint>(decode_sockaddr(raw, 110, false)).name == "ppppp");
    }
    SECTION("AF_UNSPEC, unsupported families, faults")
    {
        set_family(AF_UNSPEC);
        auto unspec = decode_sockaddr(raw, 16, false);
        CHECK(family_name(unspec) == "AF_UNSPEC");
        set_family(AF_PACKET);
        CHECK(family_name(decode_sockaddr(raw, 20, false)) == "AF_17");
        set_family(AF_INET);
        auto fault = decode_sockaddr(raw, 16, true);
        REQUIRE(std::holds_alternative<UnknownAddress>(fault));
        CHECK(std::get<UnknownAddress>(fault).family == 0);
        CHECK(std::holds_alternative<UnknownAddress>(decode_sockaddr(raw, 1, false)));
        CHECK(std::holds_alternative<UnknownAddress>(decode_sockaddr(raw, 0, false)));
    }
}

TEST_CASE("boot time to epoch time saturates instead of overflowing")
{
    CHECK(boot_to_epoch_ns(1000, 5000) == 6000);
    CHECK(boot_to_epoch_ns(6000, -5000) == 1000);
    // The fuzz finding (tests/fuzz/regressions/record/boot-time-overflow-int64).
    CHECK(boot_to_epoch_ns(9223372036854762773ULL, 1351943) == 9223372036856114716ULL);
    CHECK(boot_to_epoch_ns(UINT64_MAX, 1) == UINT64_MAX);
    CHECK(boot_to_epoch_ns(UINT64_MAX - 10, INT64_MAX) == UINT64_MAX);
    CHECK(boot_to_epoch_ns(5, -6) == 0);
    CHECK(boot_to_epoch_ns(0, INT64_MIN) == 0);
    CHECK(boot_to_epoch_ns(UINT64_MAX, INT64_MIN) == UINT64_MAX - (1ULL << 63));

    auto r = make_connect();
    r.hdr.boot_ns = UINT64_MAX - 3;
    SecuritySocketConnect ev;
    REQUIRE(decode_connect(&r, sizeof(r), 1000, ev));
    CHECK(ev.process.timestamp_ns == UINT64_MAX);
}

TEST_CASE("a connect record from no known hook is rejected")
{
    auto r = make_connect();
    SecuritySocketConnect ev;
    for (std::uint16_t hook : {0, CS_HOOK_LAST + 1, 0xffff}) {
        r.hook = hook;
        CHECK_FALSE(decode_connect(&r, sizeof(r), 0, ev));
    }
    for (std::uint16_t hook = CS_HOOK_LSM; hook <= CS_HOOK_LAST; ++hook) {
        r.hook = hook;
        CHECK(decode_connect(&r, sizeof(r), 0, ev));
    }
}

TEST_CASE("a connect record says which path it came by, and no unknown one")
{
    auto r = make_connect();
    SecuritySocketConnect ev;
    const std::pair<std::uint16_t, ConnectVia> known[] = {{CS_VIA_UNKNOWN, ConnectVia::unknown},
                                                          {CS_VIA_CONNECT, ConnectVia::connect},
                                                          {CS_VIA_FASTOPEN, ConnectVia::fastopen},
                                                          {CS_VIA_IO_URING, ConnectVia::io_uring}};
    for (const auto &[wire, via] : known) {
        r.via = wire;
        REQUIRE(decode_connect(&r, sizeof(r), 0, ev));
        CHECK(ev.via == via);
    }
    // A value no program of ours writes is a corrupt record.
    for (std::uint16_t wire : {CS_VIA_LAST + 1, 0xffff}) {
        r.via = wire;
        CHECK_FALSE(decode_connect(&r, sizeof(r), 0, ev));
    }
}

TEST_CASE("a connect record carries its connect id and whether it came late; id 0 is corrupt")
{
    auto r = make_connect();
    SecuritySocketConnect ev;
    REQUIRE(decode_connect(&r, sizeof(r), 0, ev));
    CHECK(ev.connect_id == 42);
    CHECK_FALSE(ev.late);
    r.flags = CS_CONNECT_LATE | CS_CONNECT_TOCTOU;
    REQUIRE(decode_connect(&r, sizeof(r), 0, ev));
    CHECK(ev.late);
    CHECK(ev.toctou);
    r.connect_id = 0;
    CHECK_FALSE(decode_connect(&r, sizeof(r), 0, ev));
}

TEST_CASE("an outcome record decodes field by field")
{
    ConnectOutcome o;
    SECTION("a refused TCP connect, with the LSM verdict and the local endpoint")
    {
        auto r = make_outcome();
        r.out.flags = CS_OUTCOME_RESULT | CS_OUTCOME_TCP | CS_OUTCOME_LSM_KNOWN | CS_OUTCOME_LOCAL;
        r.out.result = -ECONNREFUSED;
        r.out.tcp_state = CS_TCP_CLOSE;
        r.out.sk_err = ECONNREFUSED;
        r.out.local_family = AF_INET;
        r.out.local_port = 40000;
        const std::uint8_t lo[4] = {127, 0, 0, 1};
        std::memcpy(r.out.local_addr, lo, 4);
        REQUIRE(decode_outcome(&r, sizeof(r), 100, o));
        CHECK(o.connect_id == 42);
        CHECK(o.timestamp_ns == 3600);
        CHECK(o.duration_ns == 2500);
        CHECK(o.pid == 10);
        CHECK(o.tid == 11);
        CHECK(o.via == ConnectVia::connect);
        CHECK(o.result == -ECONNREFUSED);
        CHECK(o.lsm == LsmVerdict::allowed);
        CHECK(o.tcp == TcpResult::refused);
        CHECK(o.tcp_error == ECONNREFUSED);
        REQUIRE(o.local);
        CHECK(o.local->ip.to_string() == "127.0.0.1");
        CHECK(o.local->port == 40000);
        CHECK(o.socket_cookie == 4097);
        CHECK(outcome_name(o) == "refused");
    }
    SECTION("each way a handshake ends")
    {
        const std::tuple<std::uint16_t, std::int32_t, TcpResult> ends[] = {
            {CS_TCP_ESTABLISHED, 0, TcpResult::established}, {CS_TCP_CLOSE, ETIMEDOUT, TcpResult::timed_out},
            {CS_TCP_CLOSE, EHOSTUNREACH, TcpResult::unreachable}, {CS_TCP_CLOSE, ENETUNREACH, TcpResult::unreachable},
            {CS_TCP_CLOSE, 0, TcpResult::closed}, {CS_TCP_CLOSE, EADDRNOTAVAIL, TcpResult::closed}};
        for (const auto &[state, err, result] : ends) {
            auto r = make_outcome();
            r.out.flags = CS_OUTCOME_TCP;
            r.out.tcp_state = state;
            r.out.sk_err = err;
            REQUIRE(decode_outcome(&r, sizeof(r), 0, o));
            CHECK(o.tcp == result);
            CHECK_FALSE(o.result); // an io_uring request: no system call returned
        }
    }
    SECTION("an LSM's refusal")
    {
        auto r = make_outcome();
        r.out.flags = CS_OUTCOME_RESULT | CS_OUTCOME_LSM_KNOWN;
        r.out.result = -EACCES;
        r.out.lsm_result = -EACCES;
        REQUIRE(decode_outcome(&r, sizeof(r), 0, o));
        CHECK(o.lsm == LsmVerdict::denied);
        CHECK(o.lsm_error == EACCES);
        CHECK(o.tcp == TcpResult::none);
        CHECK_FALSE(o.local);
        CHECK(outcome_name(o) == "denied");
    }
    SECTION("a handshake that ends before it began is not known, and the end never precedes the start")
    {
        auto r = make_outcome();
        r.out.end_boot_ns = 10;
        REQUIRE(decode_outcome(&r, sizeof(r), 0, o));
        CHECK(o.duration_ns == 0);
        CHECK(outcome_name(o) == "unknown");
    }
}

TEST_CASE("a malformed outcome record is rejected")
{
    ConnectOutcome o;
    auto r = make_outcome();
    CHECK_FALSE(decode_outcome(&r, sizeof(r) - 1, 0, o));
    r.out.connect_id = 0;
    CHECK_FALSE(decode_outcome(&r, sizeof(r), 0, o));
    r = make_outcome();
    r.out.flags = CS_OUTCOME_TCP;
    r.out.tcp_state = CS_TCP_SYN_SENT; // never an end
    CHECK_FALSE(decode_outcome(&r, sizeof(r), 0, o));
    r = make_outcome();
    r.out.via = CS_VIA_LAST + 1;
    CHECK_FALSE(decode_outcome(&r, sizeof(r), 0, o));
    r = make_outcome();
    r.out.sk_err = -1;
    CHECK_FALSE(decode_outcome(&r, sizeof(r), 0, o));
    r = make_outcome();
    r.hdr.size = sizeof(r) + 8;
    CHECK_FALSE(decode_outcome(&r, sizeof(r), 0, o));
}

TEST_CASE("decoding into a reused address keeps the UNIX name's buffer across other families")
{
    std::uint8_t unix_raw[CS_SOCKADDR_MAX] = {};
    const std::uint16_t af_unix = AF_UNIX, af_inet = AF_INET;
    std::memcpy(unix_raw, &af_unix, 2);
    const std::string path = "/run/a-socket-path-longer-than-inline.sock";
    std::memcpy(unix_raw + 2, path.data(), path.size());
    std::uint8_t inet_raw[CS_SOCKADDR_MAX] = {};
    std::memcpy(inet_raw, &af_inet, 2);
    inet_raw[4] = 127;
    inet_raw[7] = 1;

    SocketAddress addr;
    std::string spare;
    decode_sockaddr(unix_raw, 2 + static_cast<std::uint32_t>(path.size()), false, addr, spare);
    REQUIRE(std::get<UnixEndpoint>(addr).name == path);
    const char *buffer = std::get<UnixEndpoint>(addr).name.data();

    decode_sockaddr(inet_raw, 16, false, addr, spare);
    CHECK(to_string(addr) == "127.0.0.1:0");
    decode_sockaddr(unix_raw, 2, false, addr, spare); // unnamed: no name left over
    CHECK(std::get<UnixEndpoint>(addr).kind == UnixEndpoint::Kind::unnamed);
    CHECK(std::get<UnixEndpoint>(addr).name.empty());
    decode_sockaddr(inet_raw, 16, false, addr, spare);
    decode_sockaddr(unix_raw, 2 + static_cast<std::uint32_t>(path.size()), false, addr, spare);
    CHECK(std::get<UnixEndpoint>(addr).kind == UnixEndpoint::Kind::path);
    CHECK(std::get<UnixEndpoint>(addr).name == path);
    CHECK(std::get<UnixEndpoint>(addr).name.data() == buffer);
}
