// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// What connscope-trace --json pays per event to format and write it, with no
// kernel involved: the events of an HTTP client's TCP connect (one
// security_socket_connect and one net_tcp_connect each), written to
// /dev/null three ways:
//   stdio:   std::puts(connscope::to_json(ev).c_str()), as before issue 14
//   append:  connscope::to_json(ev) appended into one buffer, write(2) per 256 KiB
//   writer:  the CLI's trace::append_json_line into that buffer (what it does now)
// Usage: bench-json-output [events]   (default 400000)
#include "json_out.hpp"

#include <connscope/connscope.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

namespace {

double cpu_ns()
{
    timespec ts{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

connscope::ProcessContext process(std::uint32_t i)
{
    connscope::ProcessContext p;
    p.timestamp_ns = 1764585600123456789ULL + i * 1000ULL;
    p.pid = 41000 + i % 8;
    p.tid = p.pid;
    p.ppid = 40999;
    p.uid = 0;
    p.gid = 0;
    p.comm = "ab";
    p.cgroup_id = 1;
    p.ns = {4026531832u, 4026531833u, 4026531836u, 4026531837u, 4026531838u, 4026531839u, 4026531835u};
    return p;
}

} // namespace

int main(int argc, char **argv)
{
    const long n = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 400000;
    if (n <= 0) {
        std::fprintf(stderr, "usage: %s [events]\n", argv[0]);
        return 2;
    }
    // 64 distinct connects, as ab makes them: ephemeral fds and pids vary.
    std::vector<connscope::SecuritySocketConnect> connects(64);
    std::vector<connscope::NetTcpConnect> tcps(64);
    const std::uint8_t lo[4] = {127, 0, 0, 1};
    for (std::uint32_t i = 0; i < 64; ++i) {
        connects[i].process = process(i);
        connects[i].sockfd = static_cast<std::int32_t>(3 + i % 8);
        connects[i].type = connscope::SocketType::stream;
        connects[i].remote_addr = connscope::InetEndpoint{connscope::IpAddress::v4(lo), 18437, 0, 0};
        tcps[i].process = connects[i].process;
        tcps[i].sockfd = connects[i].sockfd;
        tcps[i].dst_ip = "127.0.0.1";
        tcps[i].dst_port = 18437;
    }
    const int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    FILE *stdio = ::fdopen(::dup(fd), "w");
    if (fd < 0 || !stdio) {
        std::perror("opening /dev/null");
        return 1;
    }
    const long pairs = n / 2;

    auto run = [&](int mode) {
        trace::JsonOut out(fd);
        std::string buf;
        buf.reserve(256 * 1024 + 4096);
        const double start = cpu_ns();
        for (long k = 0; k < pairs; ++k) {
            const auto &c = connects[static_cast<std::size_t>(k) % 64];
            const auto &t = tcps[static_cast<std::size_t>(k) % 64];
            if (mode == 0) {
                std::fputs(connscope::to_json(c).c_str(), stdio);
                std::fputc('\n', stdio);
                std::fputs(connscope::to_json(t).c_str(), stdio);
                std::fputc('\n', stdio);
            } else if (mode == 1) {
                buf += connscope::to_json(c);
                buf += '\n';
                buf += connscope::to_json(t);
                buf += '\n';
                if (buf.size() >= 256 * 1024) {
                    if (::write(fd, buf.data(), buf.size()) < 0)
                        std::perror("write");
                    buf.clear();
                }
            } else {
                out.event(c);
                out.event(t);
            }
        }
        std::fflush(stdio);
        out.flush();
        return (cpu_ns() - start) / static_cast<double>(pairs * 2);
    };

    const char *names[] = {"stdio: puts(to_json(ev))", "append: to_json(ev) into one buffer",
                           "writer: append_json_line (the CLI now)"};
    std::vector<double> results[3];
    run(0), run(1), run(2); // warm up
    for (int round = 0; round < 5; ++round)
        for (int mode = 0; mode < 3; ++mode)
            results[mode].push_back(run(mode));
    std::string sample;
    trace::append_json_line(sample, connects[0]);
    trace::append_json_line(sample, tcps[0]);
    std::printf("%ld events (half security_socket_connect, half net_tcp_connect, %zu B a pair) to /dev/null;\n"
                "CPU ns per event (process CPU time), median of 5 interleaved rounds. Goal: <= 250 ns.\n\n",
                pairs * 2, sample.size());
    std::printf("%-42s %10s\n", "way", "ns/event");
    for (int mode = 0; mode < 3; ++mode) {
        auto v = results[mode];
        std::sort(v.begin(), v.end());
        std::printf("%-42s %10.0f%s\n", names[mode], v[2], mode == 2 ? (v[2] <= 250 ? "   goal met" : "   goal MISSED") : "");
    }
    return 0;
}
