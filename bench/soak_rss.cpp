// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Soak: memory stays bounded under an endless flood of distinct DNS names and
// connects. One child sends DNS answers from a socket bound to a loopback
// address, port 53, each naming a new name and a new 127.x.y.z address;
// another connects to the addresses just named. The Session (default
// correlator, max_entries 100000 so the bound is reached early) runs here;
// RSS is sampled every second and the figures printed at the end.
//   bench-soak-rss [seconds]     (or CONNSCOPE_SOAK_SECONDS; default 120)
// Rates: CONNSCOPE_SOAK_ANSWER_RATE (default 20000/s), CONNSCOPE_SOAK_CONNECT_RATE
// (default 10000/s); CONNSCOPE_SOAK_MAX_ENTRIES (default 100000).
#include <connscope/dns.hpp>
#include <connscope/error.hpp>
#include <connscope/session.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// What the children share with each other and with the parent.
struct Shared {
    std::atomic<std::uint64_t> answers_sent{0};
    std::atomic<std::uint64_t> connects_made{0};
    std::atomic<int> dns_ready{0}; // 1 bound, -errno failed
};

[[noreturn]] void die(const char *what)
{
    std::fprintf(stderr, "soak_rss: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

unsigned long env_or(const char *name, unsigned long fallback)
{
    const char *v = std::getenv(name);
    if (!v || !*v)
        return fallback;
    char *end = nullptr;
    const unsigned long n = std::strtoul(v, &end, 10);
    return end && *end == '\0' && n > 0 ? n : fallback;
}

std::size_t rss_bytes()
{
    std::ifstream in("/proc/self/statm");
    std::size_t size = 0, resident = 0;
    in >> size >> resident;
    return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

double mib(std::size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

// The i-th distinct address: 127.1.0.1 and up (16 million of them), never
// .0 or .255 in the last byte.
in_addr address_of(std::uint64_t i)
{
    const std::uint32_t n = static_cast<std::uint32_t>(i % (254u * 256u * 254u));
    const std::uint32_t last = 1 + n % 254;
    const std::uint32_t mid = (n / 254) % 256;
    const std::uint32_t second = 1 + n / 254 / 256;
    in_addr a;
    a.s_addr = htonl(127u << 24 | second << 16 | mid << 8 | last);
    return a;
}

void put16(std::vector<std::uint8_t> &b, std::uint16_t v)
{
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
}

// A response for "n<i>.soak.test" A with one answer (the address_of(i)).
void build_answer(std::uint64_t i, std::vector<std::uint8_t> &b)
{
    b.clear();
    put16(b, static_cast<std::uint16_t>(i));
    put16(b, 0x8180); // response, RD, RA, NOERROR
    put16(b, 1);
    put16(b, 1);
    put16(b, 0);
    put16(b, 0);
    const std::string label = "n" + std::to_string(i);
    b.push_back(static_cast<std::uint8_t>(label.size()));
    b.insert(b.end(), label.begin(), label.end());
    for (const char *l : {"soak", "test"}) {
        b.push_back(static_cast<std::uint8_t>(std::strlen(l)));
        b.insert(b.end(), l, l + std::strlen(l));
    }
    b.push_back(0);
    put16(b, 1); // A
    put16(b, 1); // IN
    put16(b, 0xc00c); // the question's name
    put16(b, 1);
    put16(b, 1);
    put16(b, 0);
    put16(b, 300); // TTL
    put16(b, 4);
    const in_addr a = address_of(i);
    const auto *p = reinterpret_cast<const std::uint8_t *>(&a.s_addr);
    b.insert(b.end(), p, p + 4);
}

// Sleeps so that `done` items take done/rate seconds from start.
void pace(Clock::time_point start, std::uint64_t done, unsigned long rate)
{
    const auto due = start + std::chrono::microseconds(done * 1000000 / rate);
    if (due > Clock::now())
        std::this_thread::sleep_until(due);
}

[[noreturn]] void dns_child(Shared *shared, unsigned long rate)
{
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int server = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int client = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (server < 0 || client < 0)
        die("socket");
    // A loopback address of its own for the "server" (127.0.0.53 may be a
    // real resolver's).
    sockaddr_in from{};
    from.sin_family = AF_INET;
    from.sin_port = htons(53);
    bool bound = false;
    for (std::uint32_t last = 1; last < 200 && !bound; ++last) {
        from.sin_addr.s_addr = htonl(127u << 24 | 0u << 16 | 153u << 8 | last);
        bound = ::bind(server, reinterpret_cast<sockaddr *>(&from), sizeof(from)) == 0;
    }
    if (!bound) {
        shared->dns_ready = -errno;
        std::_Exit(1);
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(client, reinterpret_cast<sockaddr *>(&to), sizeof(to)) != 0)
        die("bind client");
    socklen_t len = sizeof(to);
    ::getsockname(client, reinterpret_cast<sockaddr *>(&to), &len);
    shared->dns_ready = 1;

    std::vector<std::uint8_t> msg;
    std::uint8_t sink[2048];
    const auto start = Clock::now();
    for (std::uint64_t i = 0;; ++i) {
        build_answer(i, msg);
        while (::sendto(server, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr *>(&to), sizeof(to)) < 0) {
            if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR)
                die("sendto");
            ::usleep(100);
        }
        shared->answers_sent.store(i + 1, std::memory_order_release);
        while (::recv(client, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
        }
        if (i % 64 == 63)
            pace(start, i + 1, rate);
    }
}

[[noreturn]] void connect_child(Shared *shared, unsigned long rate)
{
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const auto start = Clock::now();
    for (std::uint64_t k = 0;; ++k) {
        const std::uint64_t named = shared->answers_sent.load(std::memory_order_acquire);
        if (named == 0) {
            ::usleep(1000);
            continue;
        }
        // One of the last 1000 names, so the correlator should know it.
        const std::uint64_t i = named - 1 - (k * 7919) % std::min<std::uint64_t>(named, 1000);
        sockaddr_in dst{};
        dst.sin_family = AF_INET;
        dst.sin_port = htons(9); // nothing listens: refused at once
        dst.sin_addr = address_of(i);
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            die("socket");
        (void)::connect(fd, reinterpret_cast<sockaddr *>(&dst), sizeof(dst));
        ::close(fd);
        shared->connects_made.store(k + 1, std::memory_order_relaxed);
        if (k % 64 == 63)
            pace(start, k + 1, rate);
    }
}

struct Sample {
    double t;
    std::size_t rss;
    std::uint64_t entries;
};

} // namespace

int main(int argc, char **argv)
{
    if (::geteuid() != 0) {
        std::printf("soak_rss: skipped: needs root (it loads BPF programs and captures DNS answers)\n");
        return 77;
    }
    unsigned long seconds = env_or("CONNSCOPE_SOAK_SECONDS", 120);
    if (argc > 1)
        seconds = std::strtoul(argv[1], nullptr, 10);
    if (seconds < 5) {
        std::fprintf(stderr, "usage: %s [seconds >= 5]\n", argv[0]);
        return 2;
    }
    const unsigned long answer_rate = env_or("CONNSCOPE_SOAK_ANSWER_RATE", 20000);
    const unsigned long connect_rate = env_or("CONNSCOPE_SOAK_CONNECT_RATE", 10000);
    const std::size_t max_entries = env_or("CONNSCOPE_SOAK_MAX_ENTRIES", 100000);

    void *mem = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        die("mmap");
    auto *shared = new (mem) Shared;

    connscope::DnsCacheOptions cache;
    cache.max_entries = max_entries;
    auto correlator = std::shared_ptr<connscope::DnsCorrelator>(connscope::make_default_correlator(cache));

    std::uint64_t connects = 0, tcp = 0, named = 0;
    connscope::Options options;
    options.dns.correlator = correlator;
    options.on_connect = [&](const connscope::SecuritySocketConnect &) { ++connects; };
    options.on_tcp_connect = [&](const connscope::NetTcpConnect &ev) {
        ++tcp;
        if (!ev.results.empty())
            ++named;
    };

    const std::size_t rss_before = rss_bytes();
    std::optional<connscope::Session> session;
    try {
        session.emplace(std::move(options));
    } catch (const connscope::Error &e) {
        std::printf("soak_rss: skipped: %s\n", e.what());
        return 77;
    }
    const std::size_t rss_start = rss_bytes();

    const pid_t dns_pid = ::fork();
    if (dns_pid < 0)
        die("fork");
    if (dns_pid == 0)
        dns_child(shared, answer_rate);
    while (shared->dns_ready == 0)
        ::usleep(1000);
    if (shared->dns_ready < 0) {
        errno = -shared->dns_ready;
        die("binding a loopback address, port 53");
    }
    const pid_t connect_pid = ::fork();
    if (connect_pid < 0)
        die("fork");
    if (connect_pid == 0)
        connect_child(shared, connect_rate);

    std::printf("soak: %lu s, %lu answers/s with distinct names, %lu connects/s, backend %s, max_entries %zu\n",
                seconds, answer_rate, connect_rate, session->backend().name.c_str(), max_entries);
    std::printf("%6s %10s %12s %12s %12s %10s %10s %10s\n", "t (s)", "RSS MiB", "answers", "dns parsed",
                "events", "entries", "evictions", "ring lost");

    std::vector<Sample> samples;
    double full_at = -1; // when the cache first evicted
    const auto start = Clock::now();
    auto next = start + std::chrono::seconds(1);
    const auto end = start + std::chrono::seconds(seconds);
    while (Clock::now() < end) {
        session->poll(std::chrono::milliseconds(50));
        if (Clock::now() < next)
            continue;
        next += std::chrono::seconds(1);
        const double t = std::chrono::duration<double>(Clock::now() - start).count();
        const auto cs = correlator->stats();
        samples.push_back({t, rss_bytes(), cs.entries});
        if (full_at < 0 && cs.evictions > 0)
            full_at = t;
        if (samples.size() % 10 == 0 || samples.size() == 1) {
            const auto st = session->stats();
            std::printf("%6.0f %10.1f %12llu %12llu %12llu %10llu %10llu %10llu\n", t, mib(samples.back().rss),
                        static_cast<unsigned long long>(shared->answers_sent.load()),
                        static_cast<unsigned long long>(st.dns_messages),
                        static_cast<unsigned long long>(st.events),
                        static_cast<unsigned long long>(cs.entries),
                        static_cast<unsigned long long>(cs.evictions),
                        static_cast<unsigned long long>(st.lost_ring_connect + st.lost_ring_dns));
            std::fflush(stdout);
        }
    }
    ::kill(dns_pid, SIGKILL);
    ::kill(connect_pid, SIGKILL);
    ::waitpid(dns_pid, nullptr, 0);
    ::waitpid(connect_pid, nullptr, 0);
    session->consume();

    const auto st = session->stats();
    const auto cs = correlator->stats();
    const std::size_t rss_end = rss_bytes();
    std::size_t rss_max = 0;
    for (const auto &s : samples)
        rss_max = std::max(rss_max, s.rss);

    // Plateau: once the cache is full, the second half of the rest of the run
    // grows RSS by no more than max(2 MiB, 5%) over the first half's peak.
    bool plateau = false;
    double growth = 0;
    if (full_at >= 0) {
        const double mid = full_at + (samples.back().t - full_at) / 2;
        std::size_t first = 0, second = 0;
        for (const auto &s : samples) {
            if (s.t < full_at)
                continue;
            std::size_t &peak = s.t < mid ? first : second;
            peak = std::max(peak, s.rss);
        }
        growth = mib(second) - mib(first);
        plateau = first > 0 && second > 0 &&
                  static_cast<double>(second) <= std::max(static_cast<double>(first) * 1.05,
                                                          static_cast<double>(first) + 2.0 * 1024 * 1024);
    }

    std::printf("\nRSS: before Session %.1f MiB, start %.1f MiB, max %.1f MiB, end %.1f MiB\n", mib(rss_before),
                mib(rss_start), mib(rss_max), mib(rss_end));
    std::printf("answers sent %llu (distinct names), DNS messages parsed %llu, connects made %llu "
                "(events and DNS messages count the whole host's)\n",
                static_cast<unsigned long long>(shared->answers_sent.load()),
                static_cast<unsigned long long>(st.dns_messages),
                static_cast<unsigned long long>(shared->connects_made.load()));
    std::printf("delivered: %llu connect events, %llu tcp events (%llu named by the correlator); "
                "lost %llu (ring: connect %llu, dns %llu; the rest are evictions)\n",
                static_cast<unsigned long long>(connects), static_cast<unsigned long long>(tcp),
                static_cast<unsigned long long>(named), static_cast<unsigned long long>(st.lost),
                static_cast<unsigned long long>(st.lost_ring_connect),
                static_cast<unsigned long long>(st.lost_ring_dns));
    std::printf("correlator: %llu entries (bound %zu), ~%.1f MiB held, %llu evictions\n",
                static_cast<unsigned long long>(cs.entries), max_entries, mib(cs.bytes),
                static_cast<unsigned long long>(cs.evictions));
    if (full_at < 0) {
        std::printf("plateau: not judged: the cache never reached its bound (raise the rate or the time)\n");
        return 1;
    }
    std::printf("plateau: %s (cache full at %.0f s; peak RSS of the second half of the rest %+.1f MiB "
                "over the first half's)\n",
                plateau ? "yes" : "NO", full_at, growth);
    std::printf("goal: RSS plateaus once the correlator is at max_entries\n");
    return plateau ? 0 : 1;
}
