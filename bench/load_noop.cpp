// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The library with no-op callbacks, as a process of its own for bench/load.sh:
// a Session with the defaults (the same as connscope-trace's), polled on the
// main thread until SIGINT or SIGTERM; with --no-outcomes, connects are not
// followed to their outcomes (Options::outcomes off). Says "watching" on stderr once attached;
// at exit prints "events N" (both callbacks counted) on stdout. load.sh takes
// its CPU time from /proc, over the load window only.
#include <connscope/connscope.hpp>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace {
volatile std::sig_atomic_t stop = 0;
extern "C" void on_signal(int) { stop = 1; }
} // namespace

int main(int argc, char **argv)
{
    if (::geteuid() != 0) {
        std::fprintf(stderr, "bench-load-noop: needs root (it loads BPF programs)\n");
        return 77;
    }
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    std::uint64_t events = 0;
    try {
        connscope::Options options;
        options.outcomes = !(argc > 1 && std::string(argv[1]) == "--no-outcomes");
        options.on_connect = [&](const connscope::SecuritySocketConnect &) { ++events; };
        options.on_tcp_connect = [&](const connscope::NetTcpConnect &) { ++events; };
        connscope::Session session(std::move(options));
        std::fprintf(stderr, "bench-load-noop: watching (backend %s)\n", session.backend().name.c_str());
        while (!stop)
            session.poll(std::chrono::milliseconds(100));
        session.consume();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "bench-load-noop: %s\n", e.what());
        return 1;
    }
    std::printf("events %llu\n", static_cast<unsigned long long>(events));
    return 0;
}
