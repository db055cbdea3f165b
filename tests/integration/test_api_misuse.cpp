// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Hardening, bad use of the C++ API: callbacks that throw, re-enter poll() or
// break it, moved-from Sessions, and several Sessions at once (in one process
// and in two). docs/robustness.md lists every case.
#include <catch2/catch.hpp>

#include "support/harness.hpp"
#include "support/process.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <functional>
#include <netinet/in.h>
#include <set>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace connscope;
using testing::inet;
using testing::own_options;
using testing::read_all;
using testing::Recorder;
using testing::self_pid;
using testing::udp_connect;
using testing::udp_port;
using testing::write_all;

TEST_CASE("callbacks that throw are counted and later events still arrive", "[hardening][api]")
{
    Options o = own_options();
    o.backends = testing::backend_under_test();
    std::vector<std::uint16_t> connects, tcps;
    o.on_connect = [&](const SecuritySocketConnect &ev) {
        auto *ep = inet(ev);
        if (ep)
            connects.push_back(ep->port);
        if (ep && ep->port % 2 == 1)
            throw std::runtime_error("odd port");
        if (ep && ep->port == 43300)
            throw 42; // not even an exception type
    };
    o.on_tcp_connect = [&](const NetTcpConnect &ev) {
        tcps.push_back(ev.dst_port);
        throw std::logic_error("tcp callback failed");
    };
    Session session(o);
    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr *>(&sin), sizeof(sin)) == 0);
    ::listen(listener, 4);
    socklen_t len = sizeof(sin);
    ::getsockname(listener, reinterpret_cast<sockaddr *>(&sin), &len);
    const std::uint16_t tcp_port = ntohs(sin.sin_port);

    for (std::uint16_t port = 43300; port < 43306; ++port)
        udp_connect(port); // 43301, 43303, 43305 and 43300 throw
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ::connect(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (tcps.empty() && std::chrono::steady_clock::now() < deadline)
        session.poll(std::chrono::milliseconds(20));
    ::close(fd);
    ::close(listener);
    CHECK(connects == std::vector<std::uint16_t>{43300, 43301, 43302, 43303, 43304, 43305, tcp_port});
    // The NetTcpConnect of a connect is delivered even after on_connect threw for it.
    CHECK(tcps == std::vector<std::uint16_t>{tcp_port});
    auto s = session.stats();
    const std::uint64_t tcp_throws = 1, connect_throws = 4 + (tcp_port % 2 == 1 ? 1 : 0);
    CHECK(s.callback_errors == connect_throws + tcp_throws);
    CHECK(s.events == connects.size());
    CHECK(s.tcp_events == 1);
    // A callback that throws had its event delivered: counted apart, not lost.
    CHECK(s.lost == 0);
}

TEST_CASE("poll() or consume() from inside a callback throws EDEADLK", "[hardening][api]")
{
    Session *self = nullptr;
    std::vector<int> codes;
    bool ran = false;
    Options o = own_options();
    o.backends = testing::backend_under_test();
    o.on_connect = [&](const SecuritySocketConnect &) {
        if (ran)
            return;
        ran = true;
        for (int which = 0; which < 2; ++which) {
            try {
                if (which == 0)
                    self->poll(std::chrono::milliseconds(0));
                else
                    self->consume();
                codes.push_back(0);
            } catch (const Error &e) {
                codes.push_back(e.code().value());
                CHECK_THAT(e.what(), Catch::Contains("break_poll()"));
            }
        }
        // Reading stats and the backend from a callback is fine.
        CHECK(self->stats().events >= 1);
        CHECK_FALSE(self->backend().name.empty());
    };
    Session session(o);
    self = &session;
    udp_connect(43401);
    udp_connect(43402);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (session.stats().events < 2 && std::chrono::steady_clock::now() < deadline)
        session.poll(std::chrono::milliseconds(20));
    CHECK(ran);
    CHECK(codes == std::vector<int>{EDEADLK, EDEADLK});
    CHECK(session.stats().callback_errors == 0);
    CHECK(session.stats().events >= 2); // the session still works after
}

TEST_CASE("every member of a moved-from Session throws Errc::moved_from", "[hardening][api]")
{
    Options o = own_options();
    o.backends = testing::backend_under_test();
    Session a(o);
    Session b(std::move(a));
    auto moved = [](const std::function<void()> &f) {
        try {
            f();
        } catch (const Error &e) {
            CHECK_THAT(e.what(), Catch::Contains("moved from"));
            return e.code().value() == static_cast<int>(Errc::moved_from);
        }
        return false;
    };
    CHECK(moved([&] { a.poll(std::chrono::milliseconds(0)); }));
    CHECK(moved([&] { a.consume(); }));
    CHECK(moved([&] { a.fd(); }));
    CHECK(moved([&] { a.break_poll(1); }));
    CHECK(moved([&] { a.set_filters(Filters{}); }));
    CHECK(moved([&] { a.backend(); }));
    CHECK(moved([&] { a.stats(); }));
    CHECK(b.fd() >= 0);
    // Assigning a live Session to a moved-from one revives it.
    a = std::move(b);
    CHECK(a.fd() >= 0);
    CHECK(moved([&] { b.stats(); }));
    // Self-move-assignment must not free the session.
    Session &alias = a;
    a = std::move(alias);
    CHECK_NOTHROW(a.stats());
}

TEST_CASE("two Sessions in one process both see every event", "[hardening][api]")
{
    Recorder one(own_options()), two(own_options());
    std::vector<std::uint16_t> ports;
    for (int i = 0; i < 5; ++i)
        ports.push_back(testing::free_port(SOCK_DGRAM));
    for (auto port : ports)
        udp_connect(port);
    for (auto port : ports) {
        CHECK(one.wait_connect(udp_port(port)));
        CHECK(two.wait_connect(udp_port(port)));
    }
    CHECK(one.session.stats().lost == 0);
    CHECK(two.session.stats().lost == 0);
}

TEST_CASE("Sessions in two processes at once both see every event", "[hardening][api]")
{
    const std::uint16_t base = 43500;
    constexpr int count = 8;
    int ready[2], result[2];
    REQUIRE(::pipe(ready) == 0);
    REQUIRE(::pipe(result) == 0);
    const std::uint32_t parent = self_pid();
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(ready[0]);
        ::close(result[0]);
        ::alarm(20);
        std::set<std::uint16_t> seen;
        try {
            Options o = testing::test_options();
            o.backends = testing::backend_under_test();
            o.filters.pids = {parent};
            o.on_connect = [&](const SecuritySocketConnect &ev) {
                if (auto *ep = inet(ev); ep && ep->port >= base && ep->port < base + count)
                    seen.insert(ep->port);
            };
            Session s(o);
            char c = 'r';
            if (::write(ready[1], &c, 1) != 1)
                ::_exit(2);
            auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
            while (seen.size() < count && std::chrono::steady_clock::now() < deadline)
                s.poll(std::chrono::milliseconds(20));
        } catch (...) {
            ::_exit(3);
        }
        std::string out;
        for (auto p : seen)
            out += std::to_string(p) + " ";
        write_all(result[1], out);
        ::_exit(0);
    }
    ::close(ready[1]);
    ::close(result[1]);
    Recorder rec(own_options());
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    for (int i = 0; i < count; ++i)
        udp_connect(static_cast<std::uint16_t>(base + i));
    std::string expected;
    for (int i = 0; i < count; ++i) {
        CHECK(rec.wait_connect(udp_port(static_cast<std::uint16_t>(base + i))));
        expected += std::to_string(base + i) + " ";
    }
    std::string child_saw = read_all(result[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    ::close(ready[0]);
    ::close(result[0]);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(child_saw == expected);
}

TEST_CASE("break_poll from a callback: poll() returns its value, nothing is lost", "[hardening][api]")
{
    Session *self = nullptr;
    int break_value = 0;
    std::vector<std::uint16_t> ports, tcp_ports;
    Options o = own_options();
    o.backends = testing::backend_under_test();
    std::uint16_t break_on = 0;
    o.on_connect = [&](const SecuritySocketConnect &ev) {
        auto *ep = inet(ev);
        if (!ep)
            return;
        ports.push_back(ep->port);
        if (ep->port == break_on)
            self->break_poll(break_value);
    };
    o.on_tcp_connect = [&](const NetTcpConnect &ev) { tcp_ports.push_back(ev.dst_port); };
    Session session(o);
    self = &session;

    // Outside a callback it does nothing: the next poll works as usual.
    session.break_poll(99);
    udp_connect(43601);
    int n = 0;
    for (int i = 0; i < 250 && ports.empty(); ++i)
        n = session.poll(std::chrono::milliseconds(20));
    CHECK(n != 99);
    REQUIRE(ports == std::vector<std::uint16_t>{43601});

    SECTION("a value: poll() stops after that event and returns it")
    {
        ports.clear();
        break_on = 43611;
        break_value = 1234;
        for (std::uint16_t port = 43610; port < 43614; ++port)
            udp_connect(port);
        // Wait until all four are in the ring, then poll once.
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        CHECK(session.poll(std::chrono::seconds(5)) == 1234);
        CHECK(ports == std::vector<std::uint16_t>{43610, 43611});
        // The rest come with the next polls.
        for (int i = 0; i < 100 && ports.size() < 4; ++i)
            session.poll(std::chrono::milliseconds(20));
        CHECK(ports == std::vector<std::uint16_t>{43610, 43611, 43612, 43613});
    }
    SECTION("zero: poll() returns at once instead of waiting out its timeout")
    {
        ports.clear();
        break_on = 43621;
        break_value = 0;
        udp_connect(43620);
        udp_connect(43621);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        auto t0 = std::chrono::steady_clock::now();
        CHECK(session.poll(std::chrono::seconds(3)) == 0);
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
        CHECK(ports == std::vector<std::uint16_t>{43620, 43621});
    }
    SECTION("from on_connect of a TCP connect: its NetTcpConnect is still delivered")
    {
        int listener = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener, reinterpret_cast<sockaddr *>(&sin), sizeof(sin)) == 0);
        ::listen(listener, 1);
        socklen_t len = sizeof(sin);
        ::getsockname(listener, reinterpret_cast<sockaddr *>(&sin), &len);
        break_on = ntohs(sin.sin_port);
        break_value = -7;
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        ::connect(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin));
        int rc = 0;
        for (int i = 0; i < 250 && rc != -7; ++i)
            rc = session.poll(std::chrono::milliseconds(20));
        CHECK(rc == -7);
        CHECK(tcp_ports == std::vector<std::uint16_t>{break_on});
        ::close(fd);
        ::close(listener);
    }
    CHECK(session.stats().lost == 0);
}
