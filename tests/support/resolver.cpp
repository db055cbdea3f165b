// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "support/resolver.hpp"

#include "support/files.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdexcept>
#include <sys/mount.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using connscope::NetTcpConnect;

namespace testing {

std::string Client::why() const
{
    static const char *stages[] = {"done", "unshare", "mount private", "bind resolv.conf", "getaddrinfo",
                                    "socket", "pipe"};
    std::string s = report.stage >= 0 && report.stage < 7 ? stages[report.stage] : "?";
    return "client " + std::to_string(pid) + " stage " + s + ": " +
           (report.stage == 4 ? ::gai_strerror(report.error) : std::strerror(report.error));
}

void resolve_and_connect(const std::string &name, int family, std::uint16_t port, std::chrono::milliseconds delay,
                         ClientReport &r)
{
    addrinfo hints{};
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo *res = nullptr;
    int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &res);
    if (rc != 0) {
        r.stage = 4;
        r.error = rc;
        return;
    }
    sockaddr_storage ss{};
    std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
    socklen_t len = res->ai_addrlen;
    ::freeaddrinfo(res);
    if (ss.ss_family == AF_INET) {
        auto *sin = reinterpret_cast<sockaddr_in *>(&ss);
        sin->sin_port = htons(port);
        ::inet_ntop(AF_INET, &sin->sin_addr, r.address, sizeof(r.address));
    } else {
        auto *sin6 = reinterpret_cast<sockaddr_in6 *>(&ss);
        sin6->sin6_port = htons(port);
        ::inet_ntop(AF_INET6, &sin6->sin6_addr, r.address, sizeof(r.address));
    }
    if (delay.count() > 0)
        std::this_thread::sleep_for(delay);
    r.fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (r.fd < 0) {
        r.stage = 5;
        r.error = errno;
        return;
    }
    // Loopback, nobody listens: refused (or in progress) is still a connect.
    if (::connect(r.fd, reinterpret_cast<sockaddr *>(&ss), len) != 0)
        r.connect_errno = errno;
}

int use_resolver(const std::string &resolv_conf, int &error)
{
    if (::unshare(CLONE_NEWNS) != 0)
        return error = errno, 1;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        return error = errno, 2;
    if (::mount(resolv_conf.c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr) != 0)
        return error = errno, 3;
    return 0;
}

std::string resolv_conf_text(const std::string &nameserver, bool use_vc)
{
    return "nameserver " + nameserver + "\noptions timeout:2 attempts:3\n" + (use_vc ? "options use-vc\n" : "");
}

Client run_client(Recorder &rec, const std::string &nameserver, const std::string &name, int family,
                  std::uint16_t port, bool use_vc, std::chrono::milliseconds delay)
{
    std::string dir = make_temp_dir();
    std::string resolv = dir + "/resolv.conf";
    write_file(resolv, resolv_conf_text(nameserver, use_vc));
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe");
    Client c;
    c.pid = ::fork();
    if (c.pid == 0) {
        ::close(pipefd[0]);
        ClientReport r;
        r.stage = use_resolver(resolv, r.error);
        if (r.stage == 0)
            resolve_and_connect(name, family, port, delay, r);
        ssize_t w = ::write(pipefd[1], &r, sizeof(r));
        ::_exit(w == sizeof(r) ? 0 : 1);
    }
    ::close(pipefd[1]);
    wait_child(rec, c.pid);
    if (::read(pipefd[0], &c.report, sizeof(c.report)) != sizeof(c.report))
        c.report.stage = 6;
    ::close(pipefd[0]);
    ::unlink(resolv.c_str());
    ::rmdir(dir.c_str());
    return c;
}

std::optional<NetTcpConnect> tcp_of(Recorder &rec, pid_t pid, std::uint16_t port)
{
    auto *ev = rec.wait_tcp([&](const NetTcpConnect &t) {
        return t.process.pid == static_cast<std::uint32_t>(pid) && t.dst_port == port;
    });
    if (!ev)
        return std::nullopt;
    return *ev;
}

void expect_names(Recorder &rec, const Dnsmasq &dns, const std::string &name, int family, const std::string &address,
                  const Names &expected, bool use_vc, std::chrono::milliseconds delay)
{
    auto port = testing::free_port(SOCK_STREAM);
    auto c = run_client(rec, dns.address(), name, family, port, use_vc, delay);
    INFO("resolving " << name << " through " << dns.address() << (use_vc ? " over TCP" : " over UDP"));
    INFO(c.why());
    REQUIRE(c.report.stage == 0);
    CHECK(std::string(c.report.address) == address);
    auto ev = tcp_of(rec, c.pid, port);
    REQUIRE(ev);
    CHECK(ev->dst_ip == address);
    CHECK(ev->sockfd == c.report.fd);
    CHECK(ev->process.ns.net == testing::inode_of("/proc/self/ns/net"));
    CHECK(ev->results == expected);
}

} // namespace testing
