// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// io_uring asks for connects without a connect system call: IORING_OP_CONNECT
// goes through security_socket_connect (and the cgroup hooks), a send op with
// MSG_FASTOPEN through security_socket_sendmsg; the tracepoint backend reads
// IORING_OP_CONNECT's request at its submission (Linux 6.0 and later). Each is
// reported with the submitting process, sockfd -1 and via io_uring, or is a
// gap the backend declares.
#include <catch2/catch.hpp>

#include <linux/capability.h>

#include "support/harness.hpp"
#include "support/netns.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <liburing.h>
#include <memory>
#include <netinet/in.h>
#include <unistd.h>

using namespace connscope;

namespace {

bool is_tracepoint(const Session &s) { return s.backend().name == "tracepoint"; }

// Submits one prepared request and waits for its completion; its result.
int run_one(io_uring &ring)
{
    REQUIRE(io_uring_submit(&ring) == 1);
    io_uring_cqe *cqe = nullptr;
    REQUIRE(io_uring_wait_cqe(&ring, &cqe) == 0);
    int res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    return res;
}

struct Ring {
    io_uring ring{};
    bool ok = false;
    Ring() { ok = io_uring_queue_init(4, &ring, 0) == 0; }
    ~Ring()
    {
        if (ok)
            io_uring_queue_exit(&ring);
    }
};

auto mine_to(std::uint16_t port)
{
    return [port](const SecuritySocketConnect &e) {
        auto *ep = testing::inet(e);
        return ep && ep->port == port && e.process.pid == testing::self_pid();
    };
}

} // namespace

TEST_CASE("io_uring connect is reported with the submitting process", "[connect][io_uring]")
{
    testing::Recorder rec;
    Ring r;
    if (!r.ok) {
        WARN("io_uring is not available here");
        return;
    }
    INFO("backend " << rec.session.backend().name);
    const bool missed = testing::backend_misses(rec.session, "io_uring connects");
    for (const auto &gap : rec.session.backend().gaps)
        if (gap.rfind("io_uring connects", 0) == 0)
            WARN("backend " << rec.session.backend().name << " declares: " << gap);

    SECTION("UDP: one event")
    {
        auto port = testing::free_port(SOCK_DGRAM);
        int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in sin = testing::inet4("127.0.0.1", port);
        io_uring_prep_connect(io_uring_get_sqe(&r.ring), fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin));
        CHECK(run_one(r.ring) == 0);
        auto *ev = rec.wait_connect(mine_to(port), std::chrono::milliseconds(1000));
        if (missed) {
            CHECK_FALSE(ev); // the gap the backend declares is real
        } else {
            REQUIRE(ev);
            CHECK(ev->sockfd == -1); // no system call names the fd
            CHECK(ev->type == SocketType::dgram);
            CHECK(ev->via == ConnectVia::io_uring);
            CHECK(ev->toctou == is_tracepoint(rec.session));
            CHECK(family_name(ev->remote_addr) == "AF_INET");
            CHECK(testing::inet(*ev)->ip.to_string() == "127.0.0.1");
            rec.session.poll(std::chrono::milliseconds(50));
            int count = 0;
            for (const auto &e : rec.connects)
                count += mine_to(port)(e);
            CHECK(count == 1);
        }
        ::close(fd);
    }
    SECTION("TCP over IPv6: one event, and a NetTcpConnect")
    {
        // Where the non-blocking try says EINPROGRESS, 5.10 and 6.1 have an
        // io-wq worker call connect again (security_socket_connect a second
        // time), and arm64's 6.1 and 6.12 io_uring's task work, from registers
        // that name no system call: the kernel-side backends leave that retry out.
        int lfd = ::socket(AF_INET6, SOCK_STREAM, 0);
        sockaddr_in6 sin6{};
        sin6.sin6_family = AF_INET6;
        sin6.sin6_addr = in6addr_loopback;
        REQUIRE(::bind(lfd, reinterpret_cast<sockaddr *>(&sin6), sizeof(sin6)) == 0);
        REQUIRE(::listen(lfd, 4) == 0);
        socklen_t len = sizeof(sin6);
        ::getsockname(lfd, reinterpret_cast<sockaddr *>(&sin6), &len);
        const std::uint16_t port = ntohs(sin6.sin6_port);
        int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
        io_uring_prep_connect(io_uring_get_sqe(&r.ring), fd, reinterpret_cast<sockaddr *>(&sin6), sizeof(sin6));
        CHECK(run_one(r.ring) == 0);
        auto *ev = rec.wait_connect(mine_to(port), std::chrono::milliseconds(1000));
        if (missed) {
            CHECK_FALSE(ev);
        } else {
            REQUIRE(ev);
            rec.session.poll(std::chrono::milliseconds(50));
            int count = 0;
            for (const auto &e : rec.connects) {
                if (!mine_to(port)(e))
                    continue;
                ++count;
                CHECK(e.via == ConnectVia::io_uring);
                CHECK(e.sockfd == -1);
                CHECK(e.type == SocketType::stream);
                CHECK(testing::inet(e)->ip.to_string() == "::1");
            }
            CHECK(count == 1);
            auto *tcp = rec.wait_tcp([port](const NetTcpConnect &t) { return t.dst_port == port; });
            REQUIRE(tcp);
            CHECK(tcp->via == ConnectVia::io_uring);
        }
        ::close(fd);
        ::close(lfd);
    }
}

TEST_CASE("io_uring send with MSG_FASTOPEN connects via io_uring", "[connect][io_uring][fastopen]")
{
    SKIP_WITHOUT_CAPABILITY(CAP_SYS_ADMIN, "a network namespace of the test's own");
    testing::Recorder rec(testing::own_options());
    Ring r;
    if (!r.ok) {
        WARN("io_uring is not available here");
        return;
    }
    INFO("backend " << rec.session.backend().name);
    testing::OwnNetns netns("1");

    testing::TcpListener listener;
    sockaddr_in to = testing::inet4("127.0.0.1", listener.port);
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    char data[] = "hello";
    iovec iov{data, 5};
    msghdr msg{};
    msg.msg_name = &to;
    msg.msg_namelen = sizeof(to);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    io_uring_prep_sendmsg(io_uring_get_sqe(&r.ring), fd, &msg, MSG_FASTOPEN);
    int res = run_one(r.ring);
    // io_uring tries the send without blocking: the connect may still be under way.
    CHECK((res == 5 || res == -EINPROGRESS));
    auto *ev = rec.wait_connect(mine_to(listener.port), std::chrono::milliseconds(1000));
    if (testing::backend_misses(rec.session, "Fast Open sends submitted through io_uring")) {
        CHECK_FALSE(ev);
    } else {
        REQUIRE(ev);
        CHECK(ev->via == ConnectVia::io_uring);
        CHECK(ev->sockfd == -1);
        CHECK(ev->type == SocketType::stream);
        CHECK(testing::inet(*ev)->ip.to_string() == "127.0.0.1");
        CHECK_FALSE(ev->toctou);
        rec.session.poll(std::chrono::milliseconds(50));
        int count = 0;
        for (const auto &e : rec.connects)
            count += mine_to(listener.port)(e);
        CHECK(count == 1);
    }
    ::close(fd);
}

TEST_CASE("every available backend reports the same fields for an io_uring connect", "[backends][io_uring]")
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
    Ring r;
    if (recorders.size() < 2 || !r.ok) {
        WARN(recorders.size() << " backend(s) work here, io_uring " << (r.ok ? "works" : "does not")
                               << "; nothing to compare");
        return;
    }
    auto port = testing::free_port(SOCK_DGRAM);
    int fd = ::socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    sin6.sin6_addr = in6addr_loopback;
    io_uring_prep_connect(io_uring_get_sqe(&r.ring), fd, reinterpret_cast<sockaddr *>(&sin6), sizeof(sin6));
    CHECK(run_one(r.ring) == 0);

    std::string first;
    for (auto &rec : recorders) {
        const auto &name = rec->session.backend().name;
        INFO("backend " << name);
        if (testing::backend_misses(rec->session, "io_uring connects"))
            continue;
        auto *ev = rec->wait_connect(mine_to(port));
        REQUIRE(ev);
        CHECK(ev->via == ConnectVia::io_uring);
        CHECK(ev->toctou == (name == "tracepoint"));
        if (first.empty())
            first = testing::comparable(*ev);
        else
            CHECK(testing::comparable(*ev) == first);
    }
    ::close(fd);
}
