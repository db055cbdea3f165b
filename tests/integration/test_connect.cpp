// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Real connects made by the test, checked field by field against what the
// test knows about itself.
#include <catch2/catch.hpp>

#include <linux/capability.h>

#include "process/container_id.hpp"
#include "support/harness.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <fstream>
#include <poll.h>
#include <sstream>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace connscope;
using testing::inet;
using testing::Recorder;

namespace {

struct Self {
    std::uint32_t pid = static_cast<std::uint32_t>(::getpid());
    std::uint32_t tid = static_cast<std::uint32_t>(::gettid());
    std::uint32_t ppid = static_cast<std::uint32_t>(::getppid());
    std::uint32_t uid = ::getuid();
    std::uint32_t gid = ::getgid();
    std::string comm = [] {
        char name[17] = {};
        ::prctl(PR_GET_NAME, name);
        return std::string(name);
    }();
};

// A cgroup v2 id is the inode number of the cgroup's directory.
std::uint64_t own_cgroup_id() { return testing::inode_of(testing::cgroup2_mount() + testing::own_cgroup_path()); }

void check_process(const ProcessContext &p, const Self &self)
{
    CHECK(p.pid == self.pid);
    CHECK(p.tid == self.tid);
    CHECK(p.ppid == self.ppid);
    CHECK(p.uid == self.uid);
    CHECK(p.gid == self.gid);
    CHECK(p.comm == self.comm);
    CHECK(p.cgroup_id == own_cgroup_id());
    // What our own cgroup's path names: "" unless the tests run in a
    // container. The path is the hierarchy's only in the initial cgroup
    // namespace (inode PROC_CGROUP_INIT_INO).
    if (testing::inode_of("/proc/self/ns/cgroup") == 0xEFFFFFFBu)
        CHECK(p.container_id == detail::container_id_of_cgroup_path(testing::own_cgroup_path()));
    CHECK(p.ns.mnt == testing::inode_of("/proc/self/ns/mnt"));
    CHECK(p.ns.net == testing::inode_of("/proc/self/ns/net"));
    CHECK(p.ns.pid == testing::inode_of("/proc/self/ns/pid"));
    CHECK(p.ns.user == testing::inode_of("/proc/self/ns/user"));
    CHECK(p.ns.uts == testing::inode_of("/proc/self/ns/uts"));
    CHECK(p.ns.ipc == testing::inode_of("/proc/self/ns/ipc"));
    CHECK(p.ns.cgroup == testing::inode_of("/proc/self/ns/cgroup"));
    auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    // The event happened within the last minute, on the Unix-epoch clock.
    CHECK(p.timestamp_ns <= static_cast<std::uint64_t>(now));
    CHECK(p.timestamp_ns > static_cast<std::uint64_t>(now) - 60'000'000'000ULL);
}

int connect_v4(int type, std::uint16_t port, const char *ip = "127.0.0.1")
{
    int fd = ::socket(AF_INET, type, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    ::inet_pton(AF_INET, ip, &sin.sin_addr);
    ::connect(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin)); // refused is fine
    return fd;
}

int connect_v6(int type, std::uint16_t port, const char *ip = "::1", std::uint32_t scope = 0)
{
    int fd = ::socket(AF_INET6, type, 0);
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    sin6.sin6_scope_id = scope;
    ::inet_pton(AF_INET6, ip, &sin6.sin6_addr);
    ::connect(fd, reinterpret_cast<sockaddr *>(&sin6), sizeof(sin6));
    return fd;
}

auto on_port(std::uint16_t port, std::uint32_t pid = static_cast<std::uint32_t>(::getpid()))
{
    return [port, pid](const SecuritySocketConnect &ev) {
        auto *ep = inet(ev);
        return ep && ep->port == port && ev.process.pid == pid;
    };
}

} // namespace

TEST_CASE("IPv4 UDP connect: every field", "[connect]")
{
    Recorder rec;
    Self self;
    auto port = testing::free_port(SOCK_DGRAM);
    int fd = connect_v4(SOCK_DGRAM, port);
    auto *ev = rec.wait_connect(on_port(port));
    ::close(fd);
    REQUIRE(ev);
    check_process(ev->process, self);
    CHECK(ev->sockfd == fd);
    CHECK(ev->type == SocketType::dgram);
    // Only the tracepoint backend reads the caller's copy of the address.
    CHECK(ev->toctou == (rec.session.backend().name == "tracepoint"));
    CHECK(ev->via == ConnectVia::connect);
    auto *ep = inet(*ev);
    CHECK(ep->ip.to_string() == "127.0.0.1");
    CHECK(family_name(ev->remote_addr) == "AF_INET");
    // UDP makes no NetTcpConnect.
    rec.session.poll(std::chrono::milliseconds(30));
    for (const auto &t : rec.tcp)
        CHECK(t.dst_port != port);
}

TEST_CASE("IPv4 TCP connect makes SecuritySocketConnect then NetTcpConnect", "[connect][tcp]")
{
    Recorder rec;
    Self self;
    testing::TcpListener listener;
    std::uint16_t port = listener.port;

    int fd = connect_v4(SOCK_STREAM, port);
    auto *ev = rec.wait_connect(on_port(port));
    REQUIRE(ev);
    check_process(ev->process, self);
    CHECK(ev->sockfd == fd);
    CHECK(ev->type == SocketType::stream);
    auto *tcp = rec.wait_tcp([port](const NetTcpConnect &t) { return t.dst_port == port; });
    REQUIRE(tcp);
    CHECK(tcp->dst_ip == "127.0.0.1");
    CHECK(tcp->sockfd == fd);
    CHECK(tcp->process.pid == self.pid);
    CHECK(tcp->process.timestamp_ns == ev->process.timestamp_ns);
    CHECK(tcp->results.empty()); // no DNS answer named 127.0.0.1
    CHECK(ev->via == ConnectVia::connect);
    CHECK(tcp->via == ConnectVia::connect);
    ::close(fd);
}

TEST_CASE("IPv6 connect: address, port, scope id", "[connect][ipv6]")
{
    Recorder rec;
    Self self;
    auto port = testing::free_port(SOCK_DGRAM);
    int fd = connect_v6(SOCK_DGRAM, port);
    auto *ev = rec.wait_connect(on_port(port));
    REQUIRE(ev);
    check_process(ev->process, self);
    CHECK(ev->sockfd == fd);
    CHECK(family_name(ev->remote_addr) == "AF_INET6");
    CHECK(inet(*ev)->ip.to_string() == "::1");
    CHECK(inet(*ev)->scope_id == 0);
    ::close(fd);

    // A link-local address with the loopback interface's index as scope.
    auto port2 = testing::free_port(SOCK_DGRAM);
    int fd2 = connect_v6(SOCK_DGRAM, port2, "fe80::1", 1);
    auto *ev2 = rec.wait_connect(on_port(port2));
    REQUIRE(ev2);
    CHECK(inet(*ev2)->ip.to_string() == "fe80::1");
    if (testing::backend_misses(rec.session, "IPv6 scope ids"))
        WARN("backend " << rec.session.backend().name << " cannot see IPv6 scope ids on this kernel");
    else
        CHECK(inet(*ev2)->scope_id == 1);
    ::close(fd2);
}

TEST_CASE("IPv4-mapped IPv6 connect keeps its IPv6 form", "[connect][ipv6]")
{
    Recorder rec;
    auto port = testing::free_port(SOCK_DGRAM);
    int fd = connect_v6(SOCK_DGRAM, port, "::ffff:127.0.0.1");
    auto *ev = rec.wait_connect(on_port(port));
    REQUIRE(ev);
    CHECK(inet(*ev)->ip.to_string() == "::ffff:127.0.0.1");
    CHECK(inet(*ev)->ip.unmapped().to_string() == "127.0.0.1");
    ::close(fd);
}

namespace {

int connect_unix(const std::string &name, bool abstract, int type = SOCK_STREAM)
{
    int fd = ::socket(AF_UNIX, type, 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::size_t off = abstract ? 1 : 0;
    std::memcpy(sun.sun_path + off, name.data(), name.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + off + name.size() + (abstract ? 0 : 1));
    ::connect(fd, reinterpret_cast<sockaddr *>(&sun), len);
    return fd;
}


} // namespace

TEST_CASE("UNIX path and abstract connects", "[connect][unix]")
{
    Recorder rec;
    if (testing::backend_misses(rec.session, "UNIX connects")) {
        WARN("backend " << rec.session.backend().name << " cannot see UNIX connects on this kernel");
        return;
    }
    Self self;
    std::string path = "/tmp/connscope-test-" + std::to_string(::getpid()) + ".sock";
    int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strcpy(sun.sun_path, path.c_str());
    ::unlink(path.c_str());
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr *>(&sun), sizeof(sun)) == 0);
    ::listen(listener, 1);

    int fd = connect_unix(path, false);
    auto *ev = rec.wait_connect([&](const SecuritySocketConnect &e) {
        auto *u = std::get_if<UnixEndpoint>(&e.remote_addr);
        return u && u->name == path;
    });
    REQUIRE(ev);
    check_process(ev->process, self);
    CHECK(ev->sockfd == fd);
    CHECK(ev->type == SocketType::stream);
    CHECK(std::get<UnixEndpoint>(ev->remote_addr).kind == UnixEndpoint::Kind::path);
    CHECK(to_json(ev->remote_addr) == "{\"family\":\"AF_UNIX\",\"path\":\"" + path + "\"}");

    std::string abstract = "connscope-abstract-" + std::to_string(::getpid());
    int afd = connect_unix(abstract, true, SOCK_DGRAM);
    auto *aev = rec.wait_connect([&](const SecuritySocketConnect &e) {
        auto *u = std::get_if<UnixEndpoint>(&e.remote_addr);
        return u && u->kind == UnixEndpoint::Kind::abstract && u->name == abstract;
    });
    REQUIRE(aev);
    CHECK(aev->sockfd == afd);
    CHECK(aev->type == SocketType::dgram);
    CHECK(to_json(aev->remote_addr) == "{\"family\":\"AF_UNIX\",\"path\":\"@" + abstract + "\"}");
    ::close(fd);
    ::close(afd);
    ::close(listener);
    ::unlink(path.c_str());
}

TEST_CASE("A connect from a second thread carries that thread's id", "[connect][thread]")
{
    Recorder rec;
    auto port = testing::free_port(SOCK_DGRAM);
    std::uint32_t thread_tid = 0;
    int fd = -1;
    std::thread t([&] {
        ::prctl(PR_SET_NAME, "cs-worker");
        thread_tid = static_cast<std::uint32_t>(::gettid());
        fd = connect_v4(SOCK_DGRAM, port);
    });
    t.join();
    auto *ev = rec.wait_connect(on_port(port));
    REQUIRE(ev);
    CHECK(ev->process.pid == static_cast<std::uint32_t>(::getpid()));
    CHECK(ev->process.tid == thread_tid);
    CHECK(ev->process.tid != ev->process.pid);
    CHECK(ev->process.comm == "cs-worker");
    CHECK(ev->sockfd == fd);
    ::close(fd);
}

TEST_CASE("A forked child and another uid/gid", "[connect][fork]")
{
    SKIP_WITHOUT_CAPABILITY(CAP_SETUID, "a child of another uid");
    Recorder rec;
    auto port = testing::free_port(SOCK_DGRAM);
    auto port2 = testing::free_port(SOCK_DGRAM);
    int pipefd[2];
    REQUIRE(::pipe(pipefd) == 0);
    pid_t child = ::fork();
    if (child == 0) {
        int fd = connect_v4(SOCK_DGRAM, port);
        // Drop to another identity and connect again.
        if (::setgid(4321) != 0 || ::setuid(1234) != 0)
            ::_exit(2);
        int fd2 = connect_v4(SOCK_DGRAM, port2);
        int fds[2] = {fd, fd2};
        ssize_t w = ::write(pipefd[1], fds, sizeof(fds));
        ::_exit(w == sizeof(fds) ? 0 : 3);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    int fds[2];
    REQUIRE(::read(pipefd[0], fds, sizeof(fds)) == sizeof(fds));
    ::close(pipefd[0]);
    ::close(pipefd[1]);

    auto *ev = rec.wait_connect(on_port(port, static_cast<std::uint32_t>(child)));
    REQUIRE(ev);
    CHECK(ev->process.ppid == static_cast<std::uint32_t>(::getpid()));
    CHECK(ev->process.tid == static_cast<std::uint32_t>(child));
    CHECK(ev->process.uid == ::getuid());
    CHECK(ev->sockfd == fds[0]);
    auto *ev2 = rec.wait_connect(on_port(port2, static_cast<std::uint32_t>(child)));
    REQUIRE(ev2);
    CHECK(ev2->process.uid == 1234);
    CHECK(ev2->process.gid == 4321);
    CHECK(ev2->sockfd == fds[1]);
}

TEST_CASE("A destroyed Session leaves no program or link behind", "[lifecycle]")
{
    SKIP_WITHOUT_CAPABILITY(CAP_SYS_ADMIN, "looking BPF programs up by id");
    REQUIRE(testing::own_bpf_program_ids().empty());
    std::vector<std::uint32_t> ids;
    {
        Recorder rec;
        ids = testing::own_bpf_program_ids();
        CHECK_FALSE(ids.empty());
        for (auto id : ids)
            CHECK(testing::program_exists(id));
        auto port = testing::free_port(SOCK_DGRAM);
        int fd = connect_v4(SOCK_DGRAM, port);
        CHECK(rec.wait_connect(on_port(port)));
        ::close(fd);
    }
    CHECK(testing::own_bpf_program_ids().empty());
    // Detached and unloaded: nothing else held them, so they leave the host
    // (the kernel frees a program asynchronously, so allow it a moment).
    for (auto id : ids) {
        for (int tries = 0; tries < 100 && testing::program_exists(id); ++tries)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        CHECK_FALSE(testing::program_exists(id));
    }
}

TEST_CASE("Moved Sessions: the new one works, the old one says so", "[lifecycle]")
{
    Recorder rec;
    Session moved = std::move(rec.session);
    CHECK(moved.backend().name.size() > 0);
    try {
        rec.session.poll(std::chrono::milliseconds(0));
        FAIL("poll on a moved-from Session did not throw");
    } catch (const Error &e) {
        CHECK(e.code().value() == static_cast<int>(Errc::moved_from));
    }
}

TEST_CASE("The epoll fd becomes readable within max_latency", "[delivery]")
{
    Options o = testing::test_options();
    o.max_latency = std::chrono::milliseconds(20);
    Recorder rec(o);
    auto port = testing::free_port(SOCK_DGRAM);
    int fd = connect_v4(SOCK_DGRAM, port);
    pollfd p{rec.session.fd(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 2000) == 1);
    CHECK(rec.session.consume() >= 0);
    CHECK(rec.wait_connect(on_port(port), std::chrono::milliseconds(500)));
    ::close(fd);
}
