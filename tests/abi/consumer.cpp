// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// A C++ program built out of tree against the installed connscope with
// `pkg-config --cflags --libs connscope`. It makes a TCP connect to its own
// listener and must see it as SecuritySocketConnect and NetTcpConnect.
// Exits 77 when not root.
#include <connscope/connscope.h> // the C header must live beside the C++ API
#include <connscope/connscope.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

int main()
{
    if (std::strcmp(connscope_version(), CONNSCOPE_VERSION_STRING) != 0) {
        std::fprintf(stderr, "library %s, headers %s\n", connscope_version(), CONNSCOPE_VERSION_STRING);
        return 1;
    }
    if (geteuid() != 0) {
        std::fprintf(stderr, "consumer: needs root; skipping\n");
        return 77;
    }
    const auto pid = static_cast<std::uint32_t>(getpid());
    int fd = -1;
    std::uint16_t port = 0;
    bool seen_connect = false, seen_tcp = false;

    connscope::Options options;
    options.filters.exclude_self = false; // the connect to watch is our own
    options.on_connect = [&](const connscope::SecuritySocketConnect &ev) {
        auto *inet = std::get_if<connscope::InetEndpoint>(&ev.remote_addr);
        if (ev.process.pid == pid && ev.sockfd == fd && inet && inet->port == port &&
            ev.type == connscope::SocketType::stream && connscope::to_string(ev.remote_addr) ==
            "127.0.0.1:" + std::to_string(port))
            seen_connect = true;
    };
    options.on_tcp_connect = [&](const connscope::NetTcpConnect &ev) {
        if (ev.process.pid == pid && ev.sockfd == fd && ev.dst_ip == "127.0.0.1" && ev.dst_port == port)
            seen_tcp = true;
    };
    try {
        connscope::Session session(std::move(options));
        std::fprintf(stderr, "consumer: backend %s\n", session.backend().name.c_str());

        int listener = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(sin);
        if (listener < 0 || bind(listener, reinterpret_cast<sockaddr *>(&sin), len) < 0 ||
            listen(listener, 1) < 0 || getsockname(listener, reinterpret_cast<sockaddr *>(&sin), &len) < 0) {
            std::perror("listener");
            return 1;
        }
        port = ntohs(sin.sin_port);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin)) < 0) {
            std::perror("connect");
            return 1;
        }
        auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!(seen_connect && seen_tcp) && std::chrono::steady_clock::now() < end)
            session.poll(std::chrono::milliseconds(100));
        close(fd);
        close(listener);
    } catch (const connscope::Error &e) {
        std::fprintf(stderr, "consumer: %s\n", e.what());
        return 1;
    }
    std::fprintf(stderr, "consumer: SecuritySocketConnect %s, NetTcpConnect %s\n",
                 seen_connect ? "seen" : "NOT seen", seen_tcp ? "seen" : "NOT seen");
    return seen_connect && seen_tcp ? 0 : 1;
}
