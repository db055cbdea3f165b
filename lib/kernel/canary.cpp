// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "canary.hpp"

#include "../error_impl.hpp"

#include <connscope/error.hpp>
#include <connscope/events.hpp>

#include <algorithm>
#include <atomic>
#include <arpa/inet.h>
#include <cerrno>
#include <mutex>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace connscope::detail {

namespace {

// Every canary port of this process: a second Session must not report the
// first one's canaries when it includes its own process's connects.
std::mutex ports_lock;
std::vector<std::uint16_t> ports_in_use;
// The process those ports belong to: a child forked after a Session started
// inherits the list, but not the parent's canaries.
std::atomic<std::uint32_t> ports_pid{0};

sockaddr_in loopback4(std::uint16_t port)
{
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

sockaddr_in6 loopback6(std::uint16_t port)
{
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    a.sin6_addr = in6addr_loopback;
    return a;
}

int bound_udp(int family, std::uint16_t port, std::uint16_t *chosen)
{
    const int fd = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc;
    if (family == AF_INET) {
        auto a = loopback4(port);
        rc = ::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a));
    } else {
        int only = 1;
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof(only));
        auto a = loopback6(port);
        rc = ::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a));
    }
    if (rc != 0) {
        const int err = errno;
        ::close(fd);
        return -err;
    }
    sockaddr_storage got{};
    socklen_t len = sizeof(got);
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&got), &len);
    *chosen = ntohs(reinterpret_cast<sockaddr_in *>(&got)->sin_port); // same offset in sockaddr_in6
    return fd;
}

} // namespace

Canary::Canary()
{
    // The IPv6 port must be the IPv4 one; a few tries find a pair free in both.
    int last_err = 0;
    for (int attempt = 0; attempt < 16 && port_ == 0; ++attempt) {
        std::uint16_t port = 0;
        const int fd4 = bound_udp(AF_INET, 0, &port);
        if (fd4 < 0) {
            last_err = -fd4;
            break;
        }
        std::uint16_t same = 0;
        const int fd6 = bound_udp(AF_INET6, port, &same);
        if (fd6 == -EADDRINUSE) {
            ::close(fd4);
            continue;
        }
        port_ = port;
        bound_fds_.push_back(fd4);
        families_.push_back(AF_INET);
        if (fd6 >= 0) { // else no IPv6 loopback here (EADDRNOTAVAIL, EAFNOSUPPORT)
            bound_fds_.push_back(fd6);
            families_.push_back(AF_INET6);
        }
    }
    if (port_ == 0)
        throw Error(last_err ? last_err : EADDRINUSE,
                    "starting the liveness canary: no UDP port on loopback could be bound (" +
                        errno_text(last_err ? last_err : EADDRINUSE) +
                        "); the Session proves its hooks fire with a connect to 127.0.0.1, so the "
                        "loopback interface must be up in its network namespace");
    const std::lock_guard<std::mutex> hold(ports_lock);
    const auto self = static_cast<std::uint32_t>(::getpid());
    if (ports_pid.exchange(self) != self)
        ports_in_use.clear();
    ports_in_use.push_back(port_);
}

Canary::~Canary()
{
    for (int fd : bound_fds_)
        ::close(fd);
    const std::lock_guard<std::mutex> hold(ports_lock);
    auto it = std::find(ports_in_use.begin(), ports_in_use.end(), port_);
    if (it != ports_in_use.end())
        ports_in_use.erase(it);
}

std::string Canary::name(int family) const
{
    return family == AF_INET6 ? "IPv6 canary ([::1]:" + std::to_string(port_) + ")"
                              : "IPv4 canary (127.0.0.1:" + std::to_string(port_) + ")";
}

int Canary::send(int family) const
{
    const int fd = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    int rc;
    if (family == AF_INET) {
        auto a = loopback4(port_);
        rc = ::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a));
    } else {
        auto a = loopback6(port_);
        rc = ::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a));
    }
    const int err = rc == 0 ? 0 : errno;
    ::close(fd);
    return err;
}

int Canary::family_of(const SecuritySocketConnect &event)
{
    if (event.process.pid != ports_pid.load(std::memory_order_relaxed) || event.type != SocketType::dgram)
        return 0;
    const auto *inet = std::get_if<InetEndpoint>(&event.remote_addr);
    if (!inet)
        return 0;
    static const std::uint8_t v4_loopback[4] = {127, 0, 0, 1};
    const bool v4 = inet->ip.family == IpAddress::Family::v4;
    if (v4 ? inet->ip != IpAddress::v4(v4_loopback) : inet->ip != IpAddress::v6(in6addr_loopback.s6_addr))
        return 0;
    {
        const std::lock_guard<std::mutex> hold(ports_lock);
        if (std::find(ports_in_use.begin(), ports_in_use.end(), inet->port) == ports_in_use.end())
            return 0;
    }
    return v4 ? AF_INET : AF_INET6;
}

} // namespace connscope::detail
