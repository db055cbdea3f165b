// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The same connects seen through every backend that works on this kernel,
// at once, must carry the same field values. Documented exceptions: the
// timestamp (each hook runs at its own moment), toctou (true only for the
// tracepoint), and what a backend declares in its gaps.
#include <catch2/catch.hpp>

#include "support/harness.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <memory>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

using namespace connscope;

namespace {

// Everything but the timestamp and toctou.
std::string comparable(const SecuritySocketConnect &ev)
{
    SecuritySocketConnect copy = ev;
    copy.process.timestamp_ns = 0;
    copy.toctou = false;
    return to_json(copy);
}

} // namespace

TEST_CASE("every available backend reports the same fields for the same connects", "[backends]")
{
    std::vector<std::unique_ptr<testing::Recorder>> recorders;
    for (const auto &name : backend_names()) {
        Options o = testing::test_options();
        o.backends = {name};
        o.dns.enabled = false;
        try {
            recorders.push_back(std::make_unique<testing::Recorder>(o));
        } catch (const Error &e) {
            INFO("backend " << name << " unavailable: " << e.what());
        }
    }
    if (recorders.size() < 2) {
        WARN("only " << recorders.size() << " backend(s) work here; nothing to compare");
        return;
    }

    auto udp_port = testing::free_port(SOCK_DGRAM);
    int udp = ::socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(udp_port);
    sin6.sin6_addr = in6addr_loopback;
    ::connect(udp, reinterpret_cast<sockaddr *>(&sin6), sizeof(sin6));

    std::string path = "/tmp/connscope-backends-" + std::to_string(::getpid()) + ".sock";
    int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strncpy(sun.sun_path, path.c_str(), sizeof(sun.sun_path) - 1);
    ::unlink(path.c_str());
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr *>(&sun), sizeof(sun)) == 0);
    ::listen(listener, 1);
    int unix_fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    ::connect(unix_fd, reinterpret_cast<sockaddr *>(&sun), sizeof(sun));

    auto is_udp = [udp_port](const SecuritySocketConnect &e) {
        auto *ep = testing::inet(e);
        return ep && ep->port == udp_port;
    };
    auto is_unix = [&path](const SecuritySocketConnect &e) {
        auto *u = std::get_if<UnixEndpoint>(&e.remote_addr);
        return u && u->name == path;
    };

    const SecuritySocketConnect *first_udp = nullptr;
    const SecuritySocketConnect *first_unix = nullptr;
    for (auto &rec : recorders) {
        const auto &name = rec->session.backend().name;
        INFO("backend " << name);
        auto *ev = rec->wait_connect(is_udp);
        REQUIRE(ev);
        CHECK(ev->toctou == (name == "tracepoint"));
        if (!first_udp)
            first_udp = ev;
        else
            CHECK(comparable(*ev) == comparable(*first_udp));

        if (testing::backend_misses(rec->session, "UNIX connects"))
            continue;
        auto *uev = rec->wait_connect(is_unix);
        REQUIRE(uev);
        if (!first_unix)
            first_unix = uev;
        else
            CHECK(comparable(*uev) == comparable(*first_unix));
    }
    ::close(udp);
    ::close(unix_fd);
    ::close(listener);
    ::unlink(path.c_str());
}
