// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Issue 14: the consumer's path allocates nothing in a steady state. This
// program replaces the global operator new and counts the allocations made
// on the polling thread while Session::poll() decodes and dispatches real
// connects: TCP over IPv4 and over IPv4-mapped IPv6 to an address a real
// dnsmasq named (so NetTcpConnect::results holds a CNAME chain whose names
// are too long for a string's inline buffer), UDP, and UNIX to a long path,
// each with its outcome; through the C++ callbacks and through the C API's.
// After a warm-up round the count must be 0.
//
// Its own program, so that the replaced operator new counts for no other
// test. Exit 77 when not root; the dnsmasq-named half warns and is left out
// without dnsmasq.
#include <catch2/catch.hpp>

#include "support/catch_runner.hpp"

#include "support/dnsmasq.hpp"
#include "support/files.hpp"
#include "support/harness.hpp"

#include <connscope/connscope.h>

#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cerrno>
#include <memory>
#include <new>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

namespace {

// Counted only while set, and only on the thread that set it.
thread_local bool counting = false;
thread_local unsigned long allocations = 0;

void *allocate(std::size_t size)
{
    if (counting)
        ++allocations;
    if (void *p = std::malloc(size ? size : 1))
        return p;
    throw std::bad_alloc();
}

void *allocate_aligned(std::size_t size, std::align_val_t align)
{
    if (counting)
        ++allocations;
    const auto a = static_cast<std::size_t>(align);
    if (void *p = std::aligned_alloc(a, (size + a - 1) / a * a))
        return p;
    throw std::bad_alloc();
}

} // namespace

void *operator new(std::size_t size) { return allocate(size); }
void *operator new[](std::size_t size) { return allocate(size); }
void *operator new(std::size_t size, std::align_val_t a) { return allocate_aligned(size, a); }
void *operator new[](std::size_t size, std::align_val_t a) { return allocate_aligned(size, a); }
void *operator new(std::size_t size, const std::nothrow_t &) noexcept
{
    try {
        return allocate(size);
    } catch (...) {
        return nullptr;
    }
}
void *operator new[](std::size_t size, const std::nothrow_t &t) noexcept { return operator new(size, t); }
void operator delete(void *p) noexcept { std::free(p); }
void operator delete[](void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }
void operator delete[](void *p, std::size_t) noexcept { std::free(p); }
void operator delete(void *p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void *p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void *p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void *p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

int quiet_libbpf(enum libbpf_print_level level, const char *format, va_list args)
{
    return level == LIBBPF_WARN ? std::vfprintf(stderr, format, args) : 0;
}

// Allocations made by the calls in body, on this thread.
template <typename Body>
unsigned long allocations_in(Body &&body)
{
    allocations = 0;
    counting = true;
    body();
    counting = false;
    return allocations;
}

// A TCP listener on every address, IPv4-mapped IPv6 included.
struct DualStackListener {
    int fd = -1;
    std::uint16_t port = 0;
    DualStackListener()
    {
        fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0); // accept_all() must not wait
        int off = 0;
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
        sockaddr_in6 any{};
        any.sin6_family = AF_INET6;
        socklen_t len = sizeof(any);
        if (::bind(fd, reinterpret_cast<sockaddr *>(&any), len) != 0 || ::listen(fd, 256) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr *>(&any), &len) != 0)
            throw std::runtime_error("dual-stack listener: " + std::string(std::strerror(errno)));
        port = ntohs(any.sin6_port);
    }
    ~DualStackListener() { ::close(fd); }
    void accept_all() const
    {
        while (true) {
            int c = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c < 0)
                return;
            ::close(c);
        }
    }
};

struct UnixListener {
    std::string dir = testing::make_temp_dir();
    // Longer than a std::string's inline buffer, as most socket paths are.
    std::string path;
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    explicit UnixListener(const std::string &name = "connscope-consumer-alloc.sock") : path(dir + "/" + name)
    {
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        std::snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path.c_str());
        if (::bind(fd, reinterpret_cast<sockaddr *>(&sun), sizeof(sun)) != 0 || ::listen(fd, 256) != 0)
            throw std::runtime_error("unix listener: " + std::string(std::strerror(errno)));
    }
    ~UnixListener()
    {
        ::close(fd);
        ::unlink(path.c_str());
        ::rmdir(dir.c_str());
    }
};

// One round of the connects the test traces: a few of each kind.
struct Connects {
    sockaddr_in tcp4{};
    sockaddr_in6 tcp6{};
    sockaddr_un unix_addr{};
    sockaddr_in udp{};

    static void connect_close(int family, int type, const void *addr, socklen_t len)
    {
        int fd = ::socket(family, type | SOCK_CLOEXEC, 0);
        (void)::connect(fd, static_cast<const sockaddr *>(addr), len);
        ::close(fd);
    }

    void round() const
    {
        connect_close(AF_INET, SOCK_STREAM, &tcp4, sizeof(tcp4));
        connect_close(AF_INET6, SOCK_STREAM, &tcp6, sizeof(tcp6));
        connect_close(AF_UNIX, SOCK_STREAM, &unix_addr, sizeof(unix_addr));
        connect_close(AF_INET, SOCK_DGRAM, &udp, sizeof(udp));
    }
    static constexpr int connects_per_round = 4;
    static constexpr int tcp_per_round = 2;
};

struct Expected {
    std::string tcp4_ip, tcp6_ip, unix_path;
    std::vector<std::string> names; // empty without dnsmasq
};

// What the callbacks saw, counted without allocating.
struct Seen {
    unsigned long connects = 0, tcp = 0, outcomes = 0, wrong = 0;
};

Connects make_connects(const std::string &ip, std::uint16_t tcp_port, const UnixListener &unix_listener)
{
    Connects c;
    c.tcp4 = testing::inet4(ip, tcp_port);
    c.tcp6.sin6_family = AF_INET6;
    c.tcp6.sin6_port = htons(tcp_port);
    REQUIRE(::inet_pton(AF_INET6, ("::ffff:" + ip).c_str(), &c.tcp6.sin6_addr) == 1);
    c.unix_addr.sun_family = AF_UNIX;
    std::snprintf(c.unix_addr.sun_path, sizeof(c.unix_addr.sun_path), "%s", unix_listener.path.c_str());
    c.udp = testing::inet4("127.0.0.1", 9);
    return c;
}

// The test's connect target: the address dnsmasq names, or without dnsmasq
// one of this run's own loopback addresses (no names then).
struct Target {
    std::unique_ptr<testing::Dnsmasq> dns;
    std::string ip;
    std::vector<std::string> names;
};

Target make_target()
{
    Target t;
    t.ip = testing::run_ip(88);
    if (!testing::have_dnsmasq() || !testing::has_capability(CAP_NET_BIND_SERVICE)) {
        WARN("no dnsmasq (or no CAP_NET_BIND_SERVICE): NetTcpConnect::results stays empty in this run");
        return t;
    }
    t.dns = std::make_unique<testing::Dnsmasq>(testing::example_config());
    t.names = {"www.example.test", "edge.cdn.test"};
    return t;
}

// The answer reaches this process, so the Session's DNS capture sees it.
void resolve(const Target &t)
{
    if (!t.dns)
        return;
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    std::uint8_t buf[512];
    const auto q = testing::dns_query(0x4242, "www.example.test", 1);
    const ssize_t n = testing::udp_exchange(fd, testing::inet4(t.dns->address(), t.dns->port()), q, buf,
                                            sizeof(buf), 500, 6);
    ::close(fd);
    REQUIRE(n > 0);
}

connscope::Options alloc_options()
{
    connscope::Options o = testing::own_options();
    o.backends = testing::backend_under_test();
    // Its rounds are timed work of their own, once per interval; this test is
    // about what each event costs.
    o.liveness_interval = std::chrono::milliseconds(0);
    return o;
}

// Polls until the Session has delivered what `rounds` rounds make, or 5 s pass.
template <typename Poll>
void drain_rounds(const Seen &seen, unsigned long rounds, bool with_outcomes, Poll &&poll_once)
{
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while ((seen.connects < rounds * Connects::connects_per_round ||
            seen.tcp < rounds * Connects::tcp_per_round ||
            (with_outcomes && seen.outcomes < rounds * Connects::connects_per_round)) &&
           std::chrono::steady_clock::now() < deadline)
        poll_once();
}

constexpr int warm_up_rounds = 3;
constexpr int measured_rounds = 50;

} // namespace

int testing::before_tests()
{
    if (::geteuid() != 0 && !testing::missing_capabilities().empty()) {
        std::printf("SKIP: the consumer-alloc test loads BPF programs and needs root, or CAP_BPF, CAP_PERFMON "
                    "and CAP_NET_ADMIN (missing %s)\n",
                    testing::missing_capabilities().c_str());
        return 77;
    }
    libbpf_set_print(quiet_libbpf);
    return -1;
}

TEST_CASE("the C++ consumer path allocates nothing in a steady state", "[consumer][alloc]")
{
    const Target target = make_target();
    DualStackListener listener;
    UnixListener unix_listener;
    const Connects connects = make_connects(target.ip, listener.port, unix_listener);
    const Expected expected{target.ip, "::ffff:" + target.ip, unix_listener.path, target.names};

    Seen seen;
    connscope::Options o = alloc_options();
    o.on_connect = [&](const connscope::SecuritySocketConnect &ev) {
        ++seen.connects;
        if (const auto *un = std::get_if<connscope::UnixEndpoint>(&ev.remote_addr))
            seen.wrong += un->name != expected.unix_path;
    };
    o.on_tcp_connect = [&](const connscope::NetTcpConnect &ev) {
        ++seen.tcp;
        seen.wrong += (ev.dst_ip != expected.tcp4_ip && ev.dst_ip != expected.tcp6_ip) || ev.results != expected.names;
    };
    o.on_outcome = [&](const connscope::ConnectOutcome &) { ++seen.outcomes; };
    connscope::Session session(o);
    resolve(target);

    auto poll_once = [&] {
        session.poll(std::chrono::milliseconds(20));
        listener.accept_all();
    };
    for (int i = 0; i < warm_up_rounds; ++i)
        connects.round();
    drain_rounds(seen, warm_up_rounds, true, poll_once);
    REQUIRE(seen.connects == warm_up_rounds * Connects::connects_per_round);
    REQUIRE(seen.tcp == warm_up_rounds * Connects::tcp_per_round);

    unsigned long during = 0;
    for (int i = 0; i < measured_rounds; ++i) {
        connects.round();
        const unsigned long rounds = warm_up_rounds + i + 1;
        during += allocations_in([&] { drain_rounds(seen, rounds, true, poll_once); });
    }
    INFO("connects " << seen.connects << ", tcp " << seen.tcp << ", outcomes " << seen.outcomes);
    CHECK(seen.connects == (warm_up_rounds + measured_rounds) * Connects::connects_per_round);
    CHECK(seen.tcp == (warm_up_rounds + measured_rounds) * Connects::tcp_per_round);
    CHECK(seen.outcomes == (warm_up_rounds + measured_rounds) * Connects::connects_per_round);
    CHECK(seen.wrong == 0);
    CHECK(session.stats().lost == 0);
    CHECK(during == 0);

    // The count sees the library's allocations: a path longer than any
    // before makes the event's string grow, once.
    const UnixListener longer(std::string(90, 'p'));
    sockaddr_un longer_addr{};
    longer_addr.sun_family = AF_UNIX;
    std::snprintf(longer_addr.sun_path, sizeof(longer_addr.sun_path), "%s", longer.path.c_str());
    Connects::connect_close(AF_UNIX, SOCK_STREAM, &longer_addr, sizeof(longer_addr));
    const unsigned long before = seen.connects;
    const unsigned long growing = allocations_in([&] {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (seen.connects == before && std::chrono::steady_clock::now() < deadline)
            poll_once();
    });
    CHECK(seen.connects == before + 1);
    CHECK(growing > 0);
}

TEST_CASE("the C API's consumer path allocates nothing in a steady state", "[consumer][alloc]")
{
    const Target target = make_target();
    DualStackListener listener;
    UnixListener unix_listener;
    const Connects connects = make_connects(target.ip, listener.port, unix_listener);
    const Expected expected{target.ip, "::ffff:" + target.ip, unix_listener.path, target.names};

    struct Context {
        Seen seen;
        const Expected *expected;
    } ctx{{}, &expected};
    connscope_callbacks cb{};
    cb.sz = sizeof(cb);
    cb.ctx = &ctx;
    cb.on_connect = [](const connscope_connect_event *ev, void *c) {
        auto &x = *static_cast<Context *>(c);
        ++x.seen.connects;
        if (ev->remote_addr->kind == CONNSCOPE_ADDR_UNIX)
            x.seen.wrong += x.expected->unix_path != ev->remote_addr->unix_name;
        return 0;
    };
    cb.on_tcp_connect = [](const connscope_tcp_connect_event *ev, void *c) {
        auto &x = *static_cast<Context *>(c);
        ++x.seen.tcp;
        x.seen.wrong += x.expected->tcp4_ip != ev->dst_ip && x.expected->tcp6_ip != ev->dst_ip;
        x.seen.wrong += ev->result_count != x.expected->names.size();
        for (std::size_t i = 0; i < ev->result_count && i < x.expected->names.size(); ++i)
            x.seen.wrong += x.expected->names[i] != ev->results[i];
        return 0;
    };
    cb.on_outcome = [](const connscope_outcome_event *, void *c) {
        ++static_cast<Context *>(c)->seen.outcomes;
        return 0;
    };

    const std::string backend = testing::backend_under_test()[0];
    const std::uint32_t self = testing::self_pid();
    connscope_filters filters{};
    filters.sz = sizeof(filters);
    filters.exclude_self = CONNSCOPE_SELF_INCLUDE;
    filters.pids = &self;
    filters.pid_count = 1;
    connscope_opts opts{};
    opts.sz = sizeof(opts);
    opts.backends = backend.c_str();
    opts.filters = &filters;
    opts.liveness_interval_ms = CONNSCOPE_LIVENESS_OFF; // as alloc_options()
    opts.outcomes_mode = CONNSCOPE_OUTCOMES_ON;
    connscope_session *session = nullptr;
    INFO(connscope_last_error());
    REQUIRE(connscope_session_new(&opts, &cb, &session) == 0);
    resolve(target);

    auto poll_once = [&] {
        connscope_session_poll(session, 20);
        listener.accept_all();
    };
    for (int i = 0; i < warm_up_rounds; ++i)
        connects.round();
    drain_rounds(ctx.seen, warm_up_rounds, true, poll_once);
    CHECK(ctx.seen.connects == warm_up_rounds * Connects::connects_per_round);

    unsigned long during = 0;
    for (int i = 0; i < measured_rounds; ++i) {
        connects.round();
        const unsigned long rounds = warm_up_rounds + i + 1;
        during += allocations_in([&] { drain_rounds(ctx.seen, rounds, true, poll_once); });
    }
    connscope_session_free(session);
    CHECK(ctx.seen.connects == (warm_up_rounds + measured_rounds) * Connects::connects_per_round);
    CHECK(ctx.seen.tcp == (warm_up_rounds + measured_rounds) * Connects::tcp_per_round);
    CHECK(ctx.seen.outcomes == (warm_up_rounds + measured_rounds) * Connects::connects_per_round);
    CHECK(ctx.seen.wrong == 0);
    CHECK(during == 0);
}
