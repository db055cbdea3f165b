// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// A TCP listener on loopback for the tests that connect to one.
#pragma once

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

namespace testing {

// A TCP listener on the loopback address of family, in the current namespace.
struct Listener {
    int fd = -1;
    sockaddr_storage addr{};
    socklen_t len = 0;
    std::uint16_t port = 0;

    explicit Listener(int family, int backlog = 8)
    {
        fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        if (family == AF_INET) {
            auto *sin = reinterpret_cast<sockaddr_in *>(&addr);
            sin->sin_family = AF_INET;
            sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            len = sizeof(*sin);
        } else {
            auto *sin6 = reinterpret_cast<sockaddr_in6 *>(&addr);
            sin6->sin6_family = AF_INET6;
            sin6->sin6_addr = in6addr_loopback;
            len = sizeof(*sin6);
        }
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&addr), len) == 0);
        REQUIRE(::listen(fd, backlog) == 0);
        REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) == 0);
        port = ntohs(reinterpret_cast<sockaddr_in *>(&addr)->sin_port); // same offset in sockaddr_in6
    }
    ~Listener() { ::close(fd); }
    const sockaddr *sa() const { return reinterpret_cast<const sockaddr *>(&addr); }

    // The bytes the first queued connection sent, so the test knows the send went through.
    std::string accept_and_read(std::size_t n) const
    {
        int c = ::accept(fd, nullptr, nullptr);
        REQUIRE(c >= 0);
        std::string got(n, '\0');
        std::size_t have = 0;
        while (have < n) {
            ssize_t r = ::read(c, &got[have], n - have);
            if (r <= 0)
                break;
            have += static_cast<std::size_t>(r);
        }
        ::close(c);
        got.resize(have);
        return got;
    }
};

} // namespace testing
