// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Shared by the integration tests: a Session that records every event, and
// what the test process knows about itself to compare the events with.
#pragma once

#include <connscope/connscope.hpp>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace testing {

// The backend under test: CONNSCOPE_TEST_BACKEND, or auto.
inline std::vector<std::string> backend_under_test()
{
    const char *b = std::getenv("CONNSCOPE_TEST_BACKEND");
    return {b && *b ? b : "auto"};
}

struct Recorder {
    std::vector<connscope::SecuritySocketConnect> connects;
    std::vector<connscope::NetTcpConnect> tcp;
    connscope::Session session;

    explicit Recorder(connscope::Options options = {})
        : session(with_callbacks(std::move(options), this))
    {
    }

    // Polls until pred holds for some recorded connect, or the timeout passes.
    const connscope::SecuritySocketConnect *
    wait_connect(const std::function<bool(const connscope::SecuritySocketConnect &)> &pred,
                 std::chrono::milliseconds timeout = std::chrono::seconds(5))
    {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            for (const auto &ev : connects)
                if (pred(ev))
                    return &ev;
            if (std::chrono::steady_clock::now() > deadline)
                return nullptr;
            session.poll(std::chrono::milliseconds(20));
        }
    }

    const connscope::NetTcpConnect *
    wait_tcp(const std::function<bool(const connscope::NetTcpConnect &)> &pred,
             std::chrono::milliseconds timeout = std::chrono::seconds(5))
    {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            for (const auto &ev : tcp)
                if (pred(ev))
                    return &ev;
            if (std::chrono::steady_clock::now() > deadline)
                return nullptr;
            session.poll(std::chrono::milliseconds(20));
        }
    }

private:
    static connscope::Options with_callbacks(connscope::Options o, Recorder *self)
    {
        if (o.backends == std::vector<std::string>{"auto"})
            o.backends = backend_under_test();
        o.on_connect = [self](const connscope::SecuritySocketConnect &ev) { self->connects.push_back(ev); };
        o.on_tcp_connect = [self](const connscope::NetTcpConnect &ev) { self->tcp.push_back(ev); };
        return o;
    }
};

inline std::uint64_t inode_of(const std::string &path)
{
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return 0;
    return st.st_ino;
}

// The BPF programs of connscope loaded on the host now (names start handle_).
int loaded_connscope_programs();

// A free TCP/UDP port on loopback: bound once to learn it, then released.
std::uint16_t free_port(int type);

// The remote endpoint if ev is an AF_INET/AF_INET6 connect.
const connscope::InetEndpoint *inet(const connscope::SecuritySocketConnect &ev);

} // namespace testing
