// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Plain sockets on loopback, without connscope: what the tests connect to and
// the connects they make to be traced.
#pragma once

#include <cstdint>
#include <string>
#include <netinet/in.h>

namespace testing {

// A TCP listener on 127.0.0.1 at a port the kernel picks; closed with the object.
struct TcpListener {
    int fd = -1;
    sockaddr_in address{};
    std::uint16_t port = 0; // host order
    TcpListener();
    ~TcpListener();
    TcpListener(const TcpListener &) = delete;
    TcpListener &operator=(const TcpListener &) = delete;
};

// A free TCP/UDP port on loopback: bound once to learn it, then released.
std::uint16_t free_port(int type);

// A UDP socket connected to 127.0.0.1:port, then closed: one connect event.
void udp_connect(std::uint16_t port);

// The AF_INET address ip:port.
sockaddr_in inet4(const std::string &ip, std::uint16_t port);

// Sets lo up, as a fresh network namespace needs; false if that failed.
bool loopback_up();

} // namespace testing
