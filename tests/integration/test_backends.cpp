// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The same connects seen through every backend that works on this kernel,
// at once, must carry the same field values. Documented exceptions: the
// timestamp (each hook runs at its own moment), toctou (true only for the
// tracepoint), and what a backend declares in its gaps.
#include <catch2/catch.hpp>

#include <linux/capability.h>

#include "support/harness.hpp"
#include "support/netns.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <memory>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

using namespace connscope;
using testing::comparable;

namespace {

// One Recorder per backend that works on this kernel, all at once.
std::vector<std::unique_ptr<testing::Recorder>> every_backend()
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
    return recorders;
}

} // namespace

TEST_CASE("every available backend reports the same fields for the same connects", "[backends]")
{
    auto recorders = every_backend();
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

TEST_CASE("every available backend reports the same fields for Fast Open connects", "[backends][fastopen]")
{
    SKIP_WITHOUT_CAPABILITY(CAP_SYS_ADMIN, "a network namespace of the test's own");
    auto recorders = every_backend();
    if (recorders.size() < 2) {
        WARN("only " << recorders.size() << " backend(s) work here; nothing to compare");
        return;
    }
    testing::OwnNetns netns("1");
    const int family = GENERATE(AF_INET, AF_INET6);
    const bool by_sendmsg = GENERATE(false, true);
    int listener = ::socket(family, SOCK_STREAM, 0);
    sockaddr_storage ss{};
    socklen_t len;
    if (family == AF_INET) {
        auto *sin = reinterpret_cast<sockaddr_in *>(&ss);
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*sin);
    } else {
        auto *sin6 = reinterpret_cast<sockaddr_in6 *>(&ss);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = in6addr_loopback;
        len = sizeof(*sin6);
    }
    auto *sa = reinterpret_cast<sockaddr *>(&ss);
    REQUIRE(::bind(listener, sa, len) == 0);
    REQUIRE(::listen(listener, 1) == 0);
    REQUIRE(::getsockname(listener, sa, &len) == 0);
    const std::uint16_t port = ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port);

    int fd = ::socket(family, SOCK_STREAM, 0);
    char data[] = "x";
    iovec iov{data, 1};
    msghdr msg{};
    msg.msg_name = sa;
    msg.msg_namelen = len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    CHECK((by_sendmsg ? ::sendmsg(fd, &msg, MSG_FASTOPEN) : ::sendto(fd, data, 1, MSG_FASTOPEN, sa, len)) == 1);

    auto is_mine = [port](const SecuritySocketConnect &e) {
        auto *ep = testing::inet(e);
        return ep && ep->port == port && e.process.pid == testing::self_pid();
    };
    const SecuritySocketConnect *first = nullptr;
    for (auto &rec : recorders) {
        const auto &name = rec->session.backend().name;
        INFO("backend " << name << (by_sendmsg ? ", sendmsg" : ", sendto"));
        auto *ev = rec->wait_connect(is_mine);
        REQUIRE(ev);
        CHECK(ev->via == ConnectVia::fastopen);
        CHECK(ev->sockfd == fd);
        CHECK(ev->toctou == (name == "tracepoint"));
        if (!first)
            first = ev;
        else
            CHECK(comparable(*ev) == comparable(*first));
    }
    ::close(fd);
    ::close(listener);
}
