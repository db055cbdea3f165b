// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "support/loopback.hpp"

#include <algorithm>
#include <iterator>
#include <mutex>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <cstring>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace testing {

TcpListener::TcpListener()
{
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&address), sizeof(address)) == 0);
    REQUIRE(::listen(fd, 4) == 0);
    socklen_t len = sizeof(address);
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&address), &len);
    port = ntohs(address.sin_port);
}

TcpListener::~TcpListener() { ::close(fd); }

namespace {

std::uint16_t any_free_port(int type)
{
    int fd = ::socket(AF_INET, type, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin));
    socklen_t len = sizeof(sin);
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&sin), &len);
    ::close(fd);
    return ntohs(sin.sin_port);
}

} // namespace

std::uint16_t free_port(int type)
{
    // The kernel may hand the port it just took back out again (it did, in
    // an arm64 VM): a test that asks twice must get two ports.
    static std::mutex lock;
    static std::uint16_t recent[64];
    static std::size_t next = 0;
    const std::lock_guard<std::mutex> hold(lock);
    for (;;) {
        const std::uint16_t port = any_free_port(type);
        if (port == 0)
            return 0; // no loopback to bind to: the caller's connect fails and says so
        if (std::find(std::begin(recent), std::end(recent), port) != std::end(recent))
            continue;
        recent[next++ % 64] = port;
        return port;
    }
}

void udp_connect(std::uint16_t port)
{
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::connect(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin));
    ::close(fd);
}

sockaddr_in inet4(const std::string &ip, std::uint16_t port)
{
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    ::inet_pton(AF_INET, ip.c_str(), &sin.sin_addr);
    return sin;
}

bool loopback_up()
{
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "lo");
    bool ok = ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP;
    ok = ok && ::ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
    ::close(s);
    return ok;
}

} // namespace testing
