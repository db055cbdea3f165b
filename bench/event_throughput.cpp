// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The highest connect rate two processes make on this machine, and whether a
// Session with the default ring (4 MiB) delivers every one of those connects
// to a no-op callback, with nothing lost.
#include <connscope/error.hpp>
#include <connscope/session.hpp>

#include <bpf/libbpf.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr int producers = 2;

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double thread_cpu_seconds()
{
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// A child that waits for a go byte, then does UDP socket+connect+close for
// `seconds`, and writes how many it made.
struct Producer {
    pid_t pid = -1;
    int go = -1;     // parent writes one byte
    int result = -1; // child writes a uint64_t
};

Producer spawn_producer(double seconds)
{
    int go[2], result[2];
    if (::pipe2(go, O_CLOEXEC) < 0 || ::pipe2(result, O_CLOEXEC) < 0) {
        std::perror("pipe");
        std::exit(1);
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        std::perror("fork");
        std::exit(1);
    }
    if (pid == 0) {
        ::close(go[1]);
        ::close(result[0]);
        char byte;
        if (::read(go[0], &byte, 1) != 1)
            ::_exit(1);
        sockaddr_in dst{};
        dst.sin_family = AF_INET;
        dst.sin_port = htons(9);
        dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        std::uint64_t n = 0;
        const auto end = Clock::now() + std::chrono::duration<double>(seconds);
        // Check the clock every 64 connects: cheap next to a connect.
        do {
            for (int i = 0; i < 64; ++i, ++n) {
                int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr *>(&dst), sizeof(dst)) < 0)
                    ::_exit(2);
                ::close(fd);
            }
        } while (Clock::now() < end);
        ::_exit(::write(result[1], &n, sizeof(n)) == sizeof(n) ? 0 : 3);
    }
    ::close(go[0]);
    ::close(result[1]);
    return {pid, go[1], result[0]};
}

struct Run {
    std::string skipped;
    double seconds = 0;
    std::uint64_t produced = 0;  // connects the producers made
    std::uint64_t delivered = 0; // of those, events the callback got
    std::uint64_t lost = 0;      // lost_ring_connect (host-wide)
    double consumer_cpu = 0;     // seconds of CPU the consumer thread used
};

// One timed run: two producers, and a Session on `backend` (none when empty)
// whose consumer is this thread. With `stall`, the consumer does not poll
// until the producers are done: the ring alone must hold what they make.
Run run(const std::string &backend, double seconds, bool stall = false)
{
    Run out;
    std::vector<Producer> kids;
    for (int i = 0; i < producers; ++i)
        kids.push_back(spawn_producer(seconds));

    std::vector<pid_t> pids;
    for (const auto &k : kids)
        pids.push_back(k.pid);
    std::uint64_t ours = 0;
    std::optional<connscope::Session> session;
    if (!backend.empty()) {
        connscope::Options o;
        o.backends = {backend};
        o.on_connect = [&](const connscope::SecuritySocketConnect &e) {
            if (std::find(pids.begin(), pids.end(), static_cast<pid_t>(e.process.pid)) != pids.end())
                ++ours;
        };
        try {
            session.emplace(std::move(o));
        } catch (const connscope::Error &e) {
            out.skipped = e.what();
        }
    }

    std::atomic<int> running{producers};
    std::vector<std::uint64_t> counts(kids.size(), 0);
    const auto start = Clock::now();
    for (const auto &k : kids) {
        if (::write(k.go, "g", 1) != 1)
            std::perror("write");
        ::close(k.go);
    }
    std::thread reaper([&] {
        for (std::size_t i = 0; i < kids.size(); ++i) {
            if (::read(kids[i].result, &counts[i], sizeof(counts[i])) != sizeof(counts[i]))
                counts[i] = 0;
            ::close(kids[i].result);
            int status = 0;
            ::waitpid(kids[i].pid, &status, 0);
            running.fetch_sub(1);
        }
    });
    const double cpu0 = thread_cpu_seconds();
    if (session) {
        while (running.load() > 0) {
            if (stall)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            else
                session->poll(std::chrono::milliseconds(50));
        }
    }
    reaper.join();
    out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (session) {
        // Every record was submitted before its connect returned: one drain gets the rest.
        while (session->consume() > 0) {
        }
        out.consumer_cpu = thread_cpu_seconds() - cpu0;
        out.lost = session->stats().lost_ring_connect;
    }
    for (auto c : counts)
        out.produced += c;
    out.delivered = ours;
    return out;
}

} // namespace

int main(int argc, char **argv)
{
    if (::geteuid() != 0) {
        std::printf("event_throughput: skipped: needs root (it loads BPF programs)\n");
        return 77;
    }
    double seconds = 3;
    int rounds = 3;
    if (argc == 3) {
        seconds = std::atof(argv[1]);
        rounds = std::atoi(argv[2]);
    }
    if (seconds <= 0 || rounds <= 0) {
        std::fprintf(stderr, "usage: %s [seconds-per-run rounds]\n", argv[0]);
        return 2;
    }

    std::vector<std::string> backends;
    const auto libbpf_print = libbpf_set_print(nullptr); // refusals are expected while probing
    const auto statuses = connscope::Session::probe_backends();
    libbpf_set_print(libbpf_print);
    for (const auto &s : statuses)
        if (s.available)
            backends.push_back(s.name);

    // Interleaved: untraced, then each backend, every round.
    std::vector<std::string> setups{""};
    setups.insert(setups.end(), backends.begin(), backends.end());
    std::vector<std::vector<Run>> runs(setups.size());
    for (int r = 0; r < rounds; ++r) {
        std::fprintf(stderr, "  round %d/%d\n", r + 1, rounds);
        for (std::size_t i = 0; i < setups.size(); ++i)
            runs[i].push_back(run(setups[i], seconds));
    }
    std::fprintf(stderr, "  stalled consumer\n");
    const Run stalled = backends.empty() ? Run{} : run(backends.front(), seconds, true);

    const connscope::Options defaults;
    std::printf("\n%d producer processes, UDP socket+connect+close for %.1f s each run, %d interleaved rounds; "
                "ring %zu KiB, max_latency %lld ms\n\n",
                producers, seconds, rounds, defaults.ring_size >> 10,
                static_cast<long long>(defaults.max_latency.count()));
    std::printf("%-22s %12s %12s %8s %12s %10s %14s\n", "setup", "connects/s", "delivered/s", "vs top", "lost",
                "missing", "consumer ns/ev");
    double top = 0;
    for (std::size_t i = 0; i < setups.size(); ++i) {
        const std::string name = setups[i].empty() ? "untraced (top rate)" : "Session " + setups[i];
        std::vector<double> rate, delivered_rate, cpu_per_event;
        std::uint64_t lost = 0, missing = 0;
        std::string skipped;
        for (const Run &run : runs[i]) {
            if (!run.skipped.empty()) {
                skipped = run.skipped;
                continue;
            }
            rate.push_back(static_cast<double>(run.produced) / run.seconds);
            delivered_rate.push_back(static_cast<double>(run.delivered) / run.seconds);
            if (run.delivered)
                cpu_per_event.push_back(run.consumer_cpu * 1e9 / static_cast<double>(run.delivered));
            lost += run.lost;
            missing += run.produced - std::min(run.produced, run.delivered);
        }
        if (!skipped.empty()) {
            std::printf("%-22s skipped: %s\n", name.c_str(), skipped.c_str());
            continue;
        }
        if (i == 0) {
            top = median(rate);
            std::printf("%-22s %12.0f %12s %8s %12s %10s %14s\n", name.c_str(), top, "-", "1.000", "-", "-", "-");
            continue;
        }
        std::printf("%-22s %12.0f %12.0f %8.3f %12llu %10llu %14.0f\n", name.c_str(), median(rate),
                    median(delivered_rate), median(rate) / top, static_cast<unsigned long long>(lost),
                    static_cast<unsigned long long>(missing), median(cpu_per_event));
    }
    std::printf("\n(connects/s: made by the producers while traced; delivered/s: their events the callback "
                "got; lost: Stats::lost_ring_connect summed over rounds; missing: produced - delivered)\n");

    std::printf("\ngoal: zero loss at the top rate\n");
    for (std::size_t i = 1; i < setups.size(); ++i) {
        std::uint64_t lost = 0, missing = 0;
        for (const Run &run : runs[i]) {
            lost += run.lost;
            missing += run.produced - std::min(run.produced, run.delivered);
        }
        if (runs[i].front().skipped.empty())
            std::printf("  Session %-12s %s (%llu lost, %llu missing)\n", setups[i].c_str(),
                        lost == 0 && missing == 0 ? "met" : "MISS", static_cast<unsigned long long>(lost),
                        static_cast<unsigned long long>(missing));
    }

    if (!backends.empty() && stalled.skipped.empty()) {
        const double ring_records = static_cast<double>(defaults.ring_size) / (232 + 8);
        std::printf("\nloss accounting check: Session %s whose consumer does not poll for %.1f s\n",
                    backends.front().c_str(), seconds);
        std::printf("  produced %llu, delivered %llu, lost_ring_connect %llu; delivered + lost %s produced\n",
                    static_cast<unsigned long long>(stalled.produced),
                    static_cast<unsigned long long>(stalled.delivered),
                    static_cast<unsigned long long>(stalled.lost),
                    stalled.delivered + stalled.lost >= stalled.produced ? ">=" : "< (LOSS UNCOUNTED)");
        std::printf("  the ring holds ~%.0f connect records (240 B each): %.0f ms of the top rate\n",
                    ring_records, ring_records / top * 1e3);
    }
    return 0;
}
