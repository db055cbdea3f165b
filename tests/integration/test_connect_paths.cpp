// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Every path to an outbound connect (docs/guide.md, "Connect paths"): TCP
// Fast Open by sendto, sendmsg and sendmmsg, TCP_FASTOPEN_CONNECT, a 32-bit
// task's connect and socketcall, MPTCP; each reported once, field by field,
// with the path it came by, or declared in the backend's gaps. io_uring is
// in test_io_uring.cpp. The Fast Open cases run in a network namespace of
// their own, so the test sets net.ipv4.tcp_fastopen without touching the host's.
#include <catch2/catch.hpp>

#include <linux/capability.h>

#include "support/harness.hpp"
#include "support/listener.hpp"
#include "support/netns.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <functional>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace connscope;
using testing::inet;
using testing::Listener;
using testing::OwnNetns;
using testing::own_options;
using testing::Recorder;

namespace {

bool is_tracepoint(const Session &s) { return s.backend().name == "tracepoint"; }

// What this thread's hooks reported for action: the events between two
// marker connects (one thread's records reach the ring in the order its
// hooks ran, so an empty result means the action was not reported).
std::vector<SecuritySocketConnect> events_between_markers(Recorder &rec, const std::function<void()> &action)
{
    const auto tid = static_cast<std::uint32_t>(::gettid());
    const std::uint16_t before = testing::free_port(SOCK_DGRAM);
    std::uint16_t after = before;
    while (after == before)
        after = testing::free_port(SOCK_DGRAM);
    const std::size_t start = rec.connects.size();
    testing::udp_connect(before);
    action();
    testing::udp_connect(after);
    REQUIRE(rec.wait_connect(testing::udp_port(after)));
    std::vector<SecuritySocketConnect> out;
    bool inside = false;
    for (std::size_t i = start; i < rec.connects.size(); ++i) {
        const auto &ev = rec.connects[i];
        if (ev.process.tid != tid)
            continue;
        if (testing::udp_port(before)(ev)) {
            inside = true;
            continue;
        }
        if (testing::udp_port(after)(ev))
            break;
        if (inside)
            out.push_back(ev);
    }
    REQUIRE(inside);
    return out;
}

// The event a connect to listener must give, field by field.
void check_event(const SecuritySocketConnect &ev, const Listener &l, int family, int fd, ConnectVia via,
                 const Session &s)
{
    const auto *ep = inet(ev);
    REQUIRE(ep);
    CHECK(family_name(ev.remote_addr) == (family == AF_INET ? "AF_INET" : "AF_INET6"));
    CHECK(ep->ip.to_string() == (family == AF_INET ? "127.0.0.1" : "::1"));
    CHECK(ep->port == l.port);
    CHECK(ev.sockfd == fd);
    CHECK(ev.type == SocketType::stream);
    CHECK(ev.via == via);
    CHECK(ev.toctou == is_tracepoint(s));
    CHECK(ev.process.pid == testing::self_pid());
}

enum class FastOpenCall { sendto, sendmsg, sendmmsg };

ssize_t fastopen_send(FastOpenCall call, int fd, const Listener &l, const char *data, std::size_t n)
{
    iovec iov{const_cast<char *>(data), n};
    msghdr msg{};
    msg.msg_name = const_cast<sockaddr *>(l.sa());
    msg.msg_namelen = l.len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    switch (call) {
    case FastOpenCall::sendto: return ::sendto(fd, data, n, MSG_FASTOPEN, l.sa(), l.len);
    case FastOpenCall::sendmsg: return ::sendmsg(fd, &msg, MSG_FASTOPEN);
    case FastOpenCall::sendmmsg: {
        mmsghdr m{};
        m.msg_hdr = msg;
        return ::sendmmsg(fd, &m, 1, MSG_FASTOPEN) == 1 ? static_cast<ssize_t>(m.msg_len) : -1;
    }
    }
    return -1;
}

#if defined(__x86_64__)
// A 32-bit system call from this 64-bit process (int 0x80 takes the ia32
// path and sets TS_COMPAT); its arguments are 32 bits wide.
long ia32_syscall(long nr, long a, long b, long c)
{
    long ret;
    asm volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return ret;
}

constexpr long ia32_getpid = 20;
constexpr long ia32_socketcall = 102;
constexpr long ia32_connect = 362;
constexpr long socketcall_connect = 3; // SYS_CONNECT
constexpr long socketcall_sendto = 11; // SYS_SENDTO

// Whether ia32 emulation answers here (a kernel may have it off): tried in
// a child, as int 0x80 without it is a fault, not an error code.
bool ia32_available()
{
    pid_t pid = ::fork();
    if (pid == 0)
        ::_exit(ia32_syscall(ia32_getpid, 0, 0, 0) == ::getpid() ? 0 : 1);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

#endif

} // namespace

TEST_CASE("TCP Fast Open: one event, the kernel's address, the fd, via fastopen", "[connect][paths][fastopen]")
{
    SKIP_WITHOUT_CAPABILITY(CAP_SYS_ADMIN, "a network namespace of the test's own");
    Recorder rec(own_options());
    OwnNetns netns("1"); // the client bit
    const int family = GENERATE(AF_INET, AF_INET6);
    const auto call = GENERATE(FastOpenCall::sendto, FastOpenCall::sendmsg, FastOpenCall::sendmmsg);
    INFO("family " << (family == AF_INET ? "AF_INET" : "AF_INET6") << ", call " << static_cast<int>(call)
                   << ", backend " << rec.session.backend().name);
    Listener l(family);
    int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    ssize_t sent = -1;
    auto events = events_between_markers(rec, [&] { sent = fastopen_send(call, fd, l, "hello", 5); });
    CHECK(sent == 5);
    CHECK(l.accept_and_read(5) == "hello"); // the send connected and delivered
    REQUIRE(events.size() == 1);
    check_event(events[0], l, family, fd, ConnectVia::fastopen, rec.session);
    const std::uint16_t port = l.port;
    auto *tcp = rec.wait_tcp([port](const NetTcpConnect &t) { return t.dst_port == port; });
    REQUIRE(tcp);
    CHECK(tcp->via == ConnectVia::fastopen);
    CHECK(tcp->sockfd == fd);
    CHECK(tcp->dst_ip == (family == AF_INET ? "127.0.0.1" : "::1"));

    // The socket is connected now: a later send, MSG_FASTOPEN or not, connects nothing.
    auto later = events_between_markers(rec, [&] {
        CHECK(::send(fd, "x", 1, 0) == 1);
        ::sendto(fd, "y", 1, MSG_FASTOPEN, l.sa(), l.len); // EISCONN
    });
    CHECK(later.empty());
    ::close(fd);
}

TEST_CASE("TCP Fast Open refused or not asked for makes no event", "[connect][paths][fastopen]")
{
    SKIP_WITHOUT_CAPABILITY(CAP_SYS_ADMIN, "a network namespace of the test's own");
    Recorder rec(own_options());
    SECTION("net.ipv4.tcp_fastopen without the client bit: the send fails, nothing connects")
    {
        OwnNetns netns("0");
        Listener l(AF_INET);
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int err = 0;
        auto events = events_between_markers(rec, [&] {
            if (::sendto(fd, "x", 1, MSG_FASTOPEN, l.sa(), l.len) < 0)
                err = errno;
        });
        CHECK(err == EOPNOTSUPP);
        CHECK(events.empty());
        ::close(fd);
    }
    SECTION("MSG_FASTOPEN on a UDP socket is a plain send")
    {
        OwnNetns netns("1");
        auto port = testing::free_port(SOCK_DGRAM);
        sockaddr_in to = testing::inet4("127.0.0.1", port);
        int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        auto events = events_between_markers(rec, [&] {
            ::sendto(fd, "x", 1, MSG_FASTOPEN, reinterpret_cast<sockaddr *>(&to), sizeof(to));
        });
        CHECK(events.empty());
        ::close(fd);
    }
}

TEST_CASE("TCP_FASTOPEN_CONNECT: the connect is reported once, the write that sends the SYN is not",
          "[connect][paths][fastopen]")
{
    SKIP_WITHOUT_CAPABILITY(CAP_SYS_ADMIN, "a network namespace of the test's own");
    Recorder rec(own_options());
    // Client bit and "no cookie needed": connect() returns at once and the
    // SYN leaves with the first write (tcp_sendmsg_fastopen -> tcp_connect).
    OwnNetns netns("5");
    const int family = GENERATE(AF_INET, AF_INET6);
    INFO("backend " << rec.session.backend().name);
    Listener l(family);
    int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    REQUIRE(::setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one)) == 0);
    int rc = -1;
    ssize_t wrote = -1;
    auto events = events_between_markers(rec, [&] {
        rc = ::connect(fd, l.sa(), l.len);
        wrote = ::write(fd, "hello", 5);
    });
    CHECK(rc == 0);
    CHECK(wrote == 5);
    CHECK(l.accept_and_read(5) == "hello");
    REQUIRE(events.size() == 1);
    check_event(events[0], l, family, fd, ConnectVia::connect, rec.session);
    ::close(fd);
}

TEST_CASE("An ordinary TCP connect with Fast Open enabled is one event via connect", "[connect][paths]")
{
    SKIP_WITHOUT_CAPABILITY(CAP_SYS_ADMIN, "a network namespace of the test's own");
    Recorder rec(own_options());
    OwnNetns netns("7");
    Listener l(AF_INET6);
    int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = -1;
    auto events = events_between_markers(rec, [&] {
        rc = ::connect(fd, l.sa(), l.len);
        ::send(fd, "x", 1, 0);
    });
    CHECK(rc == 0);
    REQUIRE(events.size() == 1);
    check_event(events[0], l, AF_INET6, fd, ConnectVia::connect, rec.session);
    ::close(fd);
}

// x86_64 only: int 0x80 is x86's; an arm64 AArch32 task (syscall_arm64.bpf.h)
// would need a 32-bit program of its own.
#if defined(__x86_64__)
TEST_CASE("A 32-bit connect and socketcall(SYS_CONNECT) are reported via connect", "[connect][paths][ia32]")
{
    SKIP_WITHOUT_CAPABILITY(CAP_SYS_ADMIN, "a network namespace of the test's own");
    Recorder rec(own_options());
    if (!ia32_available()) {
        WARN("this kernel runs no 32-bit system calls (ia32 emulation off); nothing to test");
        return;
    }
    // int 0x80 passes 32-bit pointers: the address and socketcall's
    // arguments live below 4 GiB.
    void *low = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    REQUIRE(low != MAP_FAILED);
    testing::TcpListener listener;
    auto *sin = static_cast<sockaddr_in *>(low);
    *sin = testing::inet4("127.0.0.1", listener.port);
    const auto addr32 = static_cast<long>(reinterpret_cast<std::uintptr_t>(sin));
    const bool tracepoint = is_tracepoint(rec.session);
    INFO("backend " << rec.session.backend().name);

    SECTION("connect (362)")
    {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        long rc = -1;
        auto events = events_between_markers(rec, [&] { rc = ia32_syscall(ia32_connect, fd, addr32, sizeof(*sin)); });
        CHECK(rc == 0);
        if (tracepoint) {
            CHECK(testing::backend_misses(rec.session, "32-bit connects"));
            CHECK(events.empty());
        } else {
            REQUIRE(events.size() == 1);
            CHECK(events[0].sockfd == fd); // bx of a 32-bit connect
            CHECK(events[0].via == ConnectVia::connect);
            CHECK(events[0].type == SocketType::stream);
            CHECK(inet(events[0])->port == listener.port);
            CHECK_FALSE(events[0].toctou);
        }
        ::close(fd);
    }
    SECTION("socketcall(SYS_CONNECT) (102)")
    {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        auto *args = reinterpret_cast<std::uint32_t *>(static_cast<char *>(low) + 1024);
        args[0] = static_cast<std::uint32_t>(fd);
        args[1] = static_cast<std::uint32_t>(addr32);
        args[2] = sizeof(*sin);
        const auto args32 = static_cast<long>(reinterpret_cast<std::uintptr_t>(args));
        long rc = -1;
        auto events =
            events_between_markers(rec, [&] { rc = ia32_syscall(ia32_socketcall, socketcall_connect, args32, 0); });
        CHECK(rc == 0);
        if (tracepoint) {
            CHECK(events.empty());
        } else {
            REQUIRE(events.size() == 1);
            CHECK(events[0].sockfd == -1); // the fd is in the caller's argument array, not a register
            CHECK(events[0].via == ConnectVia::connect);
            CHECK(inet(events[0])->port == listener.port);
        }
        ::close(fd);
    }
    SECTION("socketcall(SYS_SENDTO) with MSG_FASTOPEN")
    {
        OwnNetns netns("1");
        testing::TcpListener fastopen_listener;
        *sin = testing::inet4("127.0.0.1", fastopen_listener.port);
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        char *data = static_cast<char *>(low) + 2048;
        std::memcpy(data, "hi", 2);
        auto *args = reinterpret_cast<std::uint32_t *>(static_cast<char *>(low) + 1024);
        const std::uint32_t sendto_args[] = {static_cast<std::uint32_t>(fd),
                                             static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(data)),
                                             2,
                                             MSG_FASTOPEN,
                                             static_cast<std::uint32_t>(addr32),
                                             sizeof(*sin)};
        std::memcpy(args, sendto_args, sizeof(sendto_args));
        const auto args32 = static_cast<long>(reinterpret_cast<std::uintptr_t>(args));
        long rc = -1;
        auto events =
            events_between_markers(rec, [&] { rc = ia32_syscall(ia32_socketcall, socketcall_sendto, args32, 0); });
        CHECK(rc == 2);
        if (tracepoint) {
            CHECK(events.empty());
        } else {
            REQUIRE(events.size() == 1);
            CHECK(events[0].sockfd == -1);
            CHECK(events[0].via == ConnectVia::fastopen);
            CHECK(inet(events[0])->port == fastopen_listener.port);
        }
        ::close(fd);
    }
    ::munmap(low, 4096);
}
#endif

TEST_CASE("An MPTCP connect is one event via connect", "[connect][paths][mptcp]")
{
    Recorder rec(own_options());
    constexpr int ipproto_mptcp = 262;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, ipproto_mptcp);
    if (fd < 0) {
        WARN("no MPTCP here (" << std::strerror(errno) << "); nothing to test");
        return;
    }
    INFO("backend " << rec.session.backend().name);
    testing::TcpListener listener; // plain TCP: the connection falls back, the connect is the same
    sockaddr_in to = testing::inet4("127.0.0.1", listener.port);
    int rc = -1;
    auto events =
        events_between_markers(rec, [&] { rc = ::connect(fd, reinterpret_cast<sockaddr *>(&to), sizeof(to)); });
    CHECK(rc == 0);
    REQUIRE(events.size() == 1);
    CHECK(events[0].sockfd == fd);
    CHECK(events[0].via == ConnectVia::connect);
    CHECK(events[0].type == SocketType::stream);
    CHECK(inet(events[0])->port == listener.port);
    CHECK(events[0].toctou == is_tracepoint(rec.session));
    ::close(fd);
}
