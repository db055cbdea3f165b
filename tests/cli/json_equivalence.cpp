// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// connscope-trace's --json writer (examples/connscope-trace/json_out.cpp)
// against the library's formatting: for every event, the same bytes as
// connscope::to_json(event) + "\n". Built events cover every address kind
// and every byte that needs escaping; as root, the events of real connects
// made here (UDP, TCP, IPv6, UNIX path and abstract) are compared too.
#include "json_out.hpp"

#include <connscope/connscope.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace {

int failures = 0;
int compared = 0;

template <typename Event>
void check(const char *what, const Event &ev)
{
    std::string mine;
    trace::append_json_line(mine, ev);
    const std::string library = connscope::to_json(ev) + "\n";
    ++compared;
    if (mine != library) {
        ++failures;
        std::printf("FAIL %s\n  writer:  %s  library: %s", what, mine.c_str(), library.c_str());
    }
}

connscope::ProcessContext process(std::string comm, bool max)
{
    connscope::ProcessContext p;
    const auto u32 = std::numeric_limits<std::uint32_t>::max();
    p.timestamp_ns = max ? std::numeric_limits<std::uint64_t>::max() : 1764585600123456789ULL;
    p.pid = max ? u32 : 1234;
    p.tid = max ? u32 : 1235;
    p.ppid = max ? u32 : 1;
    p.uid = max ? u32 : 0;
    p.gid = max ? u32 : 100;
    p.comm = std::move(comm);
    p.cgroup_id = max ? std::numeric_limits<std::uint64_t>::max() : 0;
    p.ns = {4026531841u, 4026531840u, max ? u32 : 0u, 4026531837u, 4026531838u, 4026531839u, 4026531835u};
    return p;
}

void built_events()
{
    const std::vector<std::string> comms = {
        "", "nginx", "ab", "a\"b\\c", "tab\there", "nl\n", std::string("nul\0x", 5), "\x01\x1f\x7f",
        "caf\xc3\xa9", "\xff\xfe bad utf-8", "\xe2\x82", "\xf0\x9f\x98\x80 emoji", "0123456789abcde"};
    std::vector<connscope::SocketAddress> addresses;
    {
        const std::uint8_t v4[4] = {127, 0, 0, 1};
        const std::uint8_t v4b[4] = {255, 255, 255, 255};
        const std::uint8_t v4c[4] = {0, 0, 0, 0};
        addresses.push_back(connscope::InetEndpoint{connscope::IpAddress::v4(v4), 80, 0, 0});
        addresses.push_back(connscope::InetEndpoint{connscope::IpAddress::v4(v4b), 65535, 0, 0});
        addresses.push_back(connscope::InetEndpoint{connscope::IpAddress::v4(v4c), 0, 0, 0});
        for (const char *text : {"::1", "fe80::1", "2001:db8::1:0:0:1", "::ffff:10.0.0.1", "::"}) {
            auto ip = connscope::IpAddress::parse(text);
            if (!ip) {
                std::printf("FAIL IpAddress::parse(%s)\n", text);
                ++failures;
                continue;
            }
            addresses.push_back(connscope::InetEndpoint{*ip, 443, 7, 0});
            addresses.push_back(connscope::InetEndpoint{*ip, 53, 0, 3});
        }
        using Kind = connscope::UnixEndpoint::Kind;
        addresses.push_back(connscope::UnixEndpoint{Kind::path, "/run/x.sock"});
        addresses.push_back(connscope::UnixEndpoint{Kind::path, "/tmp/we\"ird\\\n\x01\xff"});
        addresses.push_back(connscope::UnixEndpoint{Kind::abstract, "name"});
        addresses.push_back(connscope::UnixEndpoint{Kind::abstract, std::string("a\0b\"", 4)});
        addresses.push_back(connscope::UnixEndpoint{Kind::unnamed, ""});
        addresses.push_back(connscope::UnknownAddress{0, 0});
        addresses.push_back(connscope::UnknownAddress{AF_PACKET, 20});
        addresses.push_back(connscope::UnknownAddress{65535, std::numeric_limits<std::uint32_t>::max()});
    }
    // The library gives "" or 64 hex digits; the writer must copy any bytes alike.
    const std::vector<std::string> containers = {
        "", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "we\"ird\n\xff"};
    const connscope::SocketType types[] = {connscope::SocketType::stream, connscope::SocketType::dgram,
                                           connscope::SocketType::unknown, static_cast<connscope::SocketType>(99)};
    for (std::size_t i = 0; i < comms.size(); ++i) {
        for (std::size_t k = 0; k < addresses.size(); ++k) {
            connscope::SecuritySocketConnect ev;
            ev.process = process(comms[i], (i + k) % 3 == 0);
            ev.process.container_id = containers[(i + 2 * k) % containers.size()];
            ev.sockfd = k % 4 == 0 ? -1 : (k % 4 == 1 ? std::numeric_limits<std::int32_t>::max() : 3);
            ev.type = types[(i + k) % 4];
            ev.remote_addr = addresses[k];
            ev.toctou = (i + k) % 2;
            // every path, and a value past the known ones (a newer record)
            ev.via = static_cast<connscope::ConnectVia>((i + k) % 5);
            ev.late = (i + k) % 3 == 1;
            ev.connect_id = (i + 1) * (k + 1) * 1099511627776ULL;
            ev.sequence = i * 100 + k;
            check("built security_socket_connect", ev);
        }
        connscope::NetTcpConnect tcp;
        tcp.process = process(comms[i], i % 2);
        tcp.process.container_id = containers[i % containers.size()];
        tcp.sockfd = i % 2 ? -1 : 5;
        tcp.dst_ip = i % 2 ? "2001:db8::1" : "93.184.216.34";
        tcp.dst_port = static_cast<std::uint16_t>(i * 5000);
        tcp.via = static_cast<connscope::ConnectVia>(i % 4);
        check("built net_tcp_connect, no names", tcp);
        tcp.results = {"example.com"};
        check("built net_tcp_connect, one name", tcp);
        tcp.results = {"www.example.com", "example.com.cdn.net", comms[i], "x\"y"};
        tcp.connect_id = i * 1000003;
        tcp.sequence = std::numeric_limits<std::uint64_t>::max() - i;
        check("built net_tcp_connect, names", tcp);
    }
    // Every outcome shape: with and without a result, a verdict, a handshake, a local endpoint.
    for (std::size_t k = 0; k < addresses.size(); ++k) {
        const auto *inet = std::get_if<connscope::InetEndpoint>(&addresses[k]);
        if (!inet)
            continue;
        for (int shape = 0; shape < 6; ++shape) {
            connscope::ConnectOutcome o;
            o.connect_id = k % 2 ? std::numeric_limits<std::uint64_t>::max() : 1 + k;
            o.sequence = 7 * k + static_cast<std::uint64_t>(shape);
            o.timestamp_ns = shape % 2 ? std::numeric_limits<std::uint64_t>::max() : 1764585600123456789ULL;
            o.duration_ns = static_cast<std::uint64_t>(shape) * 999999;
            o.pid = 1234;
            o.tid = shape % 3 ? 1235 : std::numeric_limits<std::uint32_t>::max();
            o.via = static_cast<connscope::ConnectVia>(shape % 5);
            const std::int32_t results[] = {0, -ECONNREFUSED, -EINPROGRESS, -EACCES, -4095, 5};
            if (shape != 4)
                o.result = results[shape];
            o.lsm = static_cast<connscope::LsmVerdict>(shape % 3);
            o.lsm_error = o.lsm == connscope::LsmVerdict::denied ? EACCES : 0;
            o.tcp = static_cast<connscope::TcpResult>(shape % 6);
            o.tcp_error = shape == 1 ? ECONNREFUSED : 0;
            if (shape != 3)
                o.local = *inet;
            o.socket_cookie = shape * 4097ULL;
            check("built connect_outcome", o);
        }
    }
}

// --- real connects -------------------------------------------------------------

void udp_connect(int family, const sockaddr *a, socklen_t len)
{
    int fd = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        (void)::connect(fd, a, len);
        ::close(fd);
    }
}

void real_connects()
{
    std::vector<connscope::SecuritySocketConnect> connects;
    std::vector<connscope::NetTcpConnect> tcps;
    std::vector<connscope::ConnectOutcome> outcomes;
    connscope::Options options;
    options.filters.exclude_self = false;
    options.filters.pids = {static_cast<std::uint32_t>(::getpid())};
    options.dns.enabled = false;
    options.on_connect = [&](const connscope::SecuritySocketConnect &ev) { connects.push_back(ev); };
    options.on_tcp_connect = [&](const connscope::NetTcpConnect &ev) { tcps.push_back(ev); };
    options.on_outcome = [&](const connscope::ConnectOutcome &ev) { outcomes.push_back(ev); };
    connscope::Session session(std::move(options));
    std::printf("real connects on backend %s\n", session.backend().name.c_str());

    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    v4.sin_port = htons(9);
    v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    udp_connect(AF_INET, reinterpret_cast<sockaddr *>(&v4), sizeof(v4));
    sockaddr_in6 v6{};
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(9);
    v6.sin6_addr = in6addr_loopback;
    udp_connect(AF_INET6, reinterpret_cast<sockaddr *>(&v6), sizeof(v6));

    int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in l = v4;
    l.sin_port = 0;
    socklen_t llen = sizeof(l);
    if (listener >= 0 && ::bind(listener, reinterpret_cast<sockaddr *>(&l), sizeof(l)) == 0 &&
        ::listen(listener, 4) == 0 && ::getsockname(listener, reinterpret_cast<sockaddr *>(&l), &llen) == 0) {
        int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        (void)::connect(c, reinterpret_cast<sockaddr *>(&l), sizeof(l));
        ::close(c);
    }
    if (listener >= 0)
        ::close(listener);

    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::snprintf(un.sun_path, sizeof(un.sun_path), "/nonexistent/connscope-\"json\"-%d", ::getpid());
    int u = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    (void)::connect(u, reinterpret_cast<sockaddr *>(&un), sizeof(un));
    ::close(u);
    sockaddr_un ab{};
    ab.sun_family = AF_UNIX;
    const char name[] = "\0connscope-json\\test";
    std::memcpy(ab.sun_path, name, sizeof(name) - 1);
    u = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    (void)::connect(u, reinterpret_cast<sockaddr *>(&ab),
                    static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + sizeof(name) - 1));
    ::close(u);

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (connects.size() < 5 && std::chrono::steady_clock::now() < deadline)
        session.poll(std::chrono::milliseconds(50));
    session.consume();
    for (const auto &ev : connects)
        check("real security_socket_connect", ev);
    for (const auto &ev : tcps)
        check("real net_tcp_connect", ev);
    for (const auto &ev : outcomes)
        check("real connect_outcome", ev);
    if (outcomes.size() < connects.size()) {
        std::printf("FAIL real connects: %zu outcomes for %zu connects\n", outcomes.size(), connects.size());
        ++failures;
    }
    // The backends that see UNIX sockets report 5; cgroup sees only inet ones.
    if (connects.size() < 3 || tcps.empty()) {
        std::printf("FAIL real connects: got %zu connect and %zu tcp events, expected at least 3 and 1\n",
                    connects.size(), tcps.size());
        ++failures;
    }
}

} // namespace

int main()
{
    built_events();
    if (::geteuid() == 0) {
        try {
            real_connects();
        } catch (const std::exception &e) {
            std::printf("FAIL real connects: %s\n", e.what());
            ++failures;
        }
    } else {
        std::printf("real connects: skipped (needs root to load BPF programs); built events only\n");
    }
    std::printf("%d events compared, %d differ\n", compared, failures);
    return failures ? 1 : 0;
}
