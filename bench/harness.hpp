// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// What the benchmarks share: the connect loops, the tracers they run under
// (none, bench-only BPF references, a Session with its consumer on its own
// thread), an interleaved runner that reports medians and ratios, and the
// kernel's run-time count of BPF programs.
#pragma once

#include <connscope/error.hpp>
#include <connscope/session.hpp>

#include "connscope_bench.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

inline void require_root(const char *program)
{
    if (::geteuid() != 0) {
        std::printf("%s: skipped: needs root (it loads BPF programs and attaches them to the cgroup v2 root)\n",
                    program);
        std::exit(77);
    }
}

[[noreturn]] inline void die(const std::string &what)
{
    std::fprintf(stderr, "error: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

// One timed loop: wall-clock and this thread's CPU time, ns per iteration.
// On a loaded machine wall time also counts time spent waiting for a CPU;
// CPU time does not, so both are reported.
struct Sample {
    double wall = 0;
    double cpu = 0;
};

inline double thread_cpu_ns()
{
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

class Stopwatch {
public:
    Sample per(std::size_t n) const
    {
        const double wall = std::chrono::duration<double, std::nano>(Clock::now() - wall_).count();
        return {wall / static_cast<double>(n), (thread_cpu_ns() - cpu_) / static_cast<double>(n)};
    }

private:
    Clock::time_point wall_ = Clock::now();
    double cpu_ = thread_cpu_ns();
};

inline double median(std::vector<double> v)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The cgroup v2 mount point, from /proc/self/mountinfo (hybrid hosts keep
// it at /sys/fs/cgroup/unified, so it is never assumed).
inline std::optional<std::string> cgroup2_root()
{
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        const auto dash = line.find(" - ");
        if (dash == std::string::npos)
            continue;
        std::istringstream tail(line.substr(dash + 3));
        std::string fstype;
        tail >> fstype;
        if (fstype != "cgroup2")
            continue;
        std::istringstream head(line.substr(0, dash));
        std::string id, parent, devno, root, mount_point;
        head >> id >> parent >> devno >> root >> mount_point;
        return mount_point;
    }
    return std::nullopt;
}

// Keeps the calling thread on one CPU, so a benchmark can keep two processes
// (or a loop and its consumer) off each other's CPU. Best effort: on one CPU
// the figures still mean something.
inline void pin_to_cpu(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ::sched_setaffinity(0, sizeof(set), &set);
}

// A forked child running body until it is killed, which destruction does.
class ChildProcess {
public:
    template <typename F>
    explicit ChildProcess(F body)
    {
        pid_ = ::fork();
        if (pid_ < 0)
            die("fork");
        if (pid_ == 0) {
            body();
            ::_exit(0);
        }
    }
    ~ChildProcess()
    {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    ChildProcess(const ChildProcess &) = delete;
    ChildProcess &operator=(const ChildProcess &) = delete;
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
};

// --- the connect loops -------------------------------------------------------

inline sockaddr_in loopback(std::uint16_t port)
{
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

// socket + connect + close of a UDP socket.
inline Sample udp_loop(std::size_t n)
{
    const sockaddr_in dst = loopback(9);
    const Stopwatch watch;
    for (std::size_t i = 0; i < n; ++i) {
        int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("socket(UDP)");
        if (::connect(fd, reinterpret_cast<const sockaddr *>(&dst), sizeof(dst)) < 0)
            die("connect(UDP)");
        ::close(fd);
    }
    return watch.per(n);
}

// A loopback listener for tcp_loop.
class Listener {
public:
    Listener()
    {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a = loopback(0);
        socklen_t len = sizeof(a);
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof(a)) < 0 || ::listen(fd_, 1024) < 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len) < 0)
            die("setting up the TCP listener");
        addr_ = a;
    }
    ~Listener() { ::close(fd_); }
    Listener(const Listener &) = delete;
    Listener &operator=(const Listener &) = delete;
    int fd() const { return fd_; }
    const sockaddr_in &addr() const { return addr_; }

private:
    int fd_ = -1;
    sockaddr_in addr_{};
};

// socket + connect + accept + close of a loopback TCP connection. The client closes with an RST (SO_LINGER 0), so no TIME_WAIT
// piles up and the ephemeral ports never run out however long it loops.
inline Sample tcp_loop(const Listener &listener, std::size_t n)
{
    const linger abort_close{1, 0};
    const Stopwatch watch;
    for (std::size_t i = 0; i < n; ++i) {
        int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0)
            die("socket(TCP)");
        if (::connect(c, reinterpret_cast<const sockaddr *>(&listener.addr()), sizeof(listener.addr())) < 0)
            die("connect(TCP)");
        int a = ::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC);
        if (a < 0)
            die("accept");
        ::setsockopt(c, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
        ::close(c);
        ::close(a);
    }
    return watch.per(n);
}

// --- filters, where the library has them --------------------------------------
// Detected at compile time, so the benchmarks build against a library with or
// without Options::filters.

template <typename O, typename = void>
struct HasPidFilter : std::false_type {};
template <typename O>
struct HasPidFilter<O, std::void_t<decltype(std::declval<O &>().filters.pids = {std::uint32_t{1}})>>
    : std::true_type {};

template <typename O, typename = void>
struct HasExcludeSelf : std::false_type {};
template <typename O>
struct HasExcludeSelf<O, std::void_t<decltype(std::declval<O &>().filters.exclude_self = true)>>
    : std::true_type {};

constexpr bool have_pid_filter = HasPidFilter<connscope::Options>::value;

// Report only connects by pid.
template <typename O>
void only_pid(O &options, std::uint32_t pid)
{
    if constexpr (HasPidFilter<O>::value)
        options.filters.pids = {pid};
}

// The benchmarks connect from the process that owns the Session, so they
// must not leave their own connects out (Filters::exclude_self, default on).
template <typename O>
void exclude_self(O &options, bool exclude)
{
    if constexpr (HasExcludeSelf<O>::value)
        options.filters.exclude_self = exclude;
}

// --- tracers -----------------------------------------------------------------

// Something watching connects while a loop runs. Construction attaches;
// finish() stops the consumer and delivers what is left; destruction detaches.
class Tracer {
public:
    virtual ~Tracer() = default;
    virtual void finish() {}
    // Records the consumer received (from any process on the host).
    virtual std::uint64_t delivered() const { return 0; }
    // Records lost because the ring was full.
    virtual std::uint64_t lost() const { return 0; }
    // CPU time the consumer thread used, ns.
    double consumer_cpu_ns() const { return consumer_cpu_ns_.load(); }

protected:
    // Runs one_poll until stop, on the calling thread, and records its CPU time.
    template <typename F>
    void consume_until(const std::atomic<bool> &stop, F one_poll)
    {
        const double start = thread_cpu_ns();
        while (!stop.load(std::memory_order_relaxed))
            one_poll();
        consumer_cpu_ns_ = thread_cpu_ns() - start;
    }

private:
    std::atomic<double> consumer_cpu_ns_{0};
};

// A Session delivering to a no-op callback, polled on its own thread so the
// consumer runs concurrently with the connect loop, as in an agent;
// consumer_cpu, when given, keeps that thread off the loop's CPU.
class SessionTracer final : public Tracer {
public:
    explicit SessionTracer(connscope::Options options, std::optional<int> consumer_cpu = std::nullopt)
    {
        options.on_connect = [this](const connscope::SecuritySocketConnect &) {
            events_.fetch_add(1, std::memory_order_relaxed);
        };
        session_ = std::make_unique<connscope::Session>(std::move(options));
        consumer_ = std::thread([this, consumer_cpu] {
            if (consumer_cpu)
                pin_to_cpu(*consumer_cpu);
            consume_until(stop_, [this] { session_->poll(std::chrono::milliseconds(50)); });
        });
    }
    ~SessionTracer() override { finish(); }
    void finish() override
    {
        if (!consumer_.joinable())
            return;
        stop_ = true;
        consumer_.join();
        while (session_->consume() > 0) {
        }
    }
    std::uint64_t delivered() const override { return events_.load(); }
    std::uint64_t lost() const override { return session_->stats().lost_ring_connect; }
    const connscope::Session &session() const { return *session_; }

private:
    std::unique_ptr<connscope::Session> session_;
    std::atomic<std::uint64_t> events_{0};
    std::atomic<bool> stop_{false};
    std::thread consumer_;
};

// The bench-only programs of reference.bpf.c on the cgroup v2 root.
// noop: the floor of a connect hook, nothing delivered. wakeup: the same
// record as the cgroup backend, submitted with a wakeup, consumed by a plain
// libbpf ring_buffer on its own thread with a no-op callback.
class ReferenceTracer final : public Tracer {
public:
    // ring_only and process: the cost breakdown programs (reference.bpf.c),
    // drained on a 10 ms timer as a Session would be. noop_ingress and
    // noop_ingress_sendmsg4: the floors of the DNS capture's per-packet hooks.
    enum class Kind { noop, wakeup, ring_only, process, noop_ingress, noop_ingress_sendmsg4 };

    explicit ReferenceTracer(Kind kind)
    {
        const auto root = cgroup2_root();
        if (!root)
            throw std::runtime_error("no cgroup v2 hierarchy is mounted");
        skel_ = connscope_bench_bpf__open_and_load();
        if (!skel_)
            throw std::runtime_error(std::string("loading reference.bpf.c: ") + std::strerror(errno));
        cgroup_fd_ = ::open(root->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cgroup_fd_ < 0)
            throw std::runtime_error("opening " + *root + ": " + std::strerror(errno));
        for (bpf_program *prog : programs(kind)) {
            bpf_link *link = bpf_program__attach_cgroup(prog, cgroup_fd_);
            if (!link)
                throw std::runtime_error(std::string("attaching ") + bpf_program__name(prog) + ": " +
                                         std::strerror(errno));
            links_.push_back(link);
        }
        if (kind == Kind::wakeup || kind == Kind::ring_only || kind == Kind::process) {
            ring_ = ring_buffer__new(bpf_map__fd(skel_->maps.events_rb),
                                     [](void *ctx, void *, std::size_t) {
                                         static_cast<ReferenceTracer *>(ctx)->events_.fetch_add(
                                             1, std::memory_order_relaxed);
                                         return 0;
                                     },
                                     this, nullptr);
            if (!ring_)
                throw std::runtime_error(std::string("creating the ring reader: ") + std::strerror(errno));
            if (kind == Kind::wakeup)
                consumer_ = std::thread([this] { consume_until(stop_, [this] { ring_buffer__poll(ring_, 50); }); });
            else
                consumer_ = std::thread([this] {
                    consume_until(stop_, [this] {
                        std::this_thread::sleep_for(std::chrono::milliseconds(10));
                        ring_buffer__consume(ring_);
                    });
                });
        }
    }
    ~ReferenceTracer() override
    {
        finish();
        ring_buffer__free(ring_);
        for (bpf_link *link : links_)
            bpf_link__destroy(link);
        if (cgroup_fd_ >= 0)
            ::close(cgroup_fd_);
        connscope_bench_bpf__destroy(skel_);
    }
    void finish() override
    {
        if (!consumer_.joinable())
            return;
        stop_ = true;
        consumer_.join();
        ring_buffer__consume(ring_);
    }
    std::uint64_t delivered() const override { return events_.load(); }

private:
    std::vector<bpf_program *> programs(Kind kind) const
    {
        switch (kind) {
        case Kind::noop:
            return {skel_->progs.handle_noop_connect4};
        case Kind::wakeup:
            return {skel_->progs.handle_wakeup_connect4};
        case Kind::ring_only:
            return {skel_->progs.handle_ring_only_connect4};
        case Kind::process:
            return {skel_->progs.handle_process_connect4};
        case Kind::noop_ingress:
            return {skel_->progs.handle_noop_ingress};
        case Kind::noop_ingress_sendmsg4:
            return {skel_->progs.handle_noop_ingress, skel_->progs.handle_noop_sendmsg4};
        }
        return {};
    }

    connscope_bench_bpf *skel_ = nullptr;
    std::vector<bpf_link *> links_;
    ring_buffer *ring_ = nullptr;
    int cgroup_fd_ = -1;
    std::atomic<std::uint64_t> events_{0};
    std::atomic<bool> stop_{false};
    std::thread consumer_;
};

// --- BPF program run time ----------------------------------------------------
// With BPF_ENABLE_STATS on, the kernel counts each program's runs and run
// time. It adds a clock read per run, so a benchmark measures it in a pass of
// its own, never during the timings.

// The ids of every loaded program: those that appear while a tracer is made
// are its own.
inline std::set<__u32> prog_ids()
{
    std::set<__u32> ids;
    for (__u32 id = 0; bpf_prog_get_next_id(id, &id) == 0;)
        ids.insert(id);
    return ids;
}

inline std::set<__u32> new_prog_ids(const std::set<__u32> &before)
{
    std::set<__u32> ours;
    for (__u32 id : prog_ids())
        if (!before.count(id))
            ours.insert(id);
    return ours;
}

struct ProgTime {
    std::string name; // as the kernel keeps it: 15 characters
    __u32 type = 0;   // enum bpf_prog_type
    __u64 run_ns = 0, runs = 0;
};

// The counters of the programs in ids, in the order of ids.
inline std::vector<ProgTime> prog_times(const std::set<__u32> &ids)
{
    std::vector<ProgTime> out;
    for (__u32 id : ids) {
        int fd = bpf_prog_get_fd_by_id(id);
        if (fd < 0)
            continue;
        bpf_prog_info info{};
        __u32 len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
            out.push_back({info.name, info.type, info.run_time_ns, info.run_cnt});
        ::close(fd);
    }
    return out;
}

// --- the interleaved runner --------------------------------------------------

struct Config {
    std::string name;
    // Null for "untraced". Throws when the setup cannot run on this machine.
    std::function<std::unique_ptr<Tracer>()> make;
    // Whether the ns/connect ratio of this row is held to the goals.
    bool has_goal = false;
};

struct Sizes {
    int rounds = 11;
    std::size_t udp = 10000;
    std::size_t tcp = 4000;
};

inline Sizes parse_sizes(int argc, char **argv, Sizes sizes)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        const long v = std::strtol(argv[i + 1], nullptr, 10);
        if (v <= 0) {
            std::fprintf(stderr, "bad value for %s\n", flag.c_str());
            std::exit(2);
        }
        if (flag == "--rounds")
            sizes.rounds = static_cast<int>(v);
        else if (flag == "--udp")
            sizes.udp = static_cast<std::size_t>(v);
        else if (flag == "--tcp")
            sizes.tcp = static_cast<std::size_t>(v);
        else {
            std::fprintf(stderr, "usage: %s [--rounds N] [--udp N] [--tcp N]\n", argv[0]);
            std::exit(2);
        }
    }
    return sizes;
}

// Per-round figures of one setup on one workload.
struct Series {
    std::vector<double> wall, cpu, wall_ratio, cpu_ratio;
};

// A loop every setup runs once per round, giving ns per iteration.
struct Workload {
    std::string name;
    std::function<Sample()> run;
};

// What one setup measured: a Series per workload, and what its tracers
// reported over all rounds.
struct Measured {
    std::string skipped; // why, when the setup cannot run here
    std::vector<Series> series;
    std::uint64_t delivered = 0, lost = 0;
    double consumer_cpu_ns = 0;
};

// Runs every config once per round, in an order rotated each round, so slow
// drift of the machine spreads over all of them; each runs every workload
// under one tracer. Config 0 must be untraced: each ratio is taken against
// the untraced run of the same round.
inline std::vector<Measured> run_rotated(const std::vector<Config> &configs, const std::vector<Workload> &workloads,
                                         int rounds)
{
    std::vector<Measured> out(configs.size());
    for (auto &m : out)
        m.series.resize(workloads.size());
    for (int r = 0; r < rounds; ++r) {
        std::fprintf(stderr, "  round %d/%d\n", r + 1, rounds);
        std::vector<std::vector<Sample>> samples(configs.size(), std::vector<Sample>(workloads.size()));
        for (std::size_t k = 0; k < configs.size(); ++k) {
            const std::size_t i = (k + static_cast<std::size_t>(r)) % configs.size();
            Measured &m = out[i];
            if (!m.skipped.empty())
                continue;
            std::unique_ptr<Tracer> tracer;
            if (configs[i].make) {
                try {
                    tracer = configs[i].make();
                } catch (const std::exception &e) {
                    m.skipped = e.what();
                    continue;
                }
            }
            for (std::size_t w = 0; w < workloads.size(); ++w)
                samples[i][w] = workloads[w].run();
            if (tracer) {
                tracer->finish();
                m.delivered += tracer->delivered();
                m.lost += tracer->lost();
                m.consumer_cpu_ns += tracer->consumer_cpu_ns();
            }
        }
        for (std::size_t i = 0; i < configs.size(); ++i) {
            if (!out[i].skipped.empty())
                continue;
            for (std::size_t w = 0; w < workloads.size(); ++w) {
                const Sample &x = samples[i][w], &base = samples[0][w];
                Series &s = out[i].series[w];
                s.wall.push_back(x.wall);
                s.cpu.push_back(x.cpu);
                s.wall_ratio.push_back(x.wall / base.wall);
                s.cpu_ratio.push_back(x.cpu / base.cpu);
            }
        }
    }
    return out;
}

struct Row {
    std::string name;
    bool has_goal = false;
    std::string skipped; // why, when the setup cannot run here
    Series udp, tcp;
    std::uint64_t delivered = 0, connects = 0, lost = 0;
    double consumer_cpu_ns = 0;
};

// The connect loops, UDP then TCP, under run_rotated.
inline std::vector<Row> run_interleaved(const std::vector<Config> &configs, const Sizes &sizes)
{
    Listener listener;
    udp_loop(sizes.udp / 4); // warm caches and the allocator
    tcp_loop(listener, sizes.tcp / 4);
    const std::vector<Workload> loops{
        {"UDP", [&] { return udp_loop(sizes.udp); }},
        {"TCP", [&] { return tcp_loop(listener, sizes.tcp); }},
    };
    const auto measured = run_rotated(configs, loops, sizes.rounds);
    std::vector<Row> rows(configs.size());
    for (std::size_t i = 0; i < configs.size(); ++i) {
        Row &row = rows[i];
        const Measured &m = measured[i];
        row.name = configs[i].name;
        row.has_goal = configs[i].has_goal;
        row.skipped = m.skipped;
        row.udp = m.series[0];
        row.tcp = m.series[1];
        row.delivered = m.delivered;
        row.lost = m.lost;
        row.consumer_cpu_ns = m.consumer_cpu_ns;
        row.connects = row.udp.wall.size() * (sizes.udp + sizes.tcp);
    }
    return rows;
}

inline void print_rows(const std::vector<Row> &rows, const Sizes &sizes)
{
    std::printf("\n%d interleaved rounds of %zu UDP and %zu TCP connects per setup. ns per connect: medians over "
                "rounds;\nratio: median over rounds of (ns / untraced ns of the same round). wall = elapsed time; "
                "cpu = the\nconnecting thread's CPU time (leaves out waits for a CPU on a loaded machine). "
                "consumer = CPU of the\nconsumer thread per record it got.\n\n",
                sizes.rounds, sizes.udp, sizes.tcp);
    std::printf("%-40s %21s %21s %21s %21s %8s %8s %5s\n", "", "UDP wall", "UDP cpu", "TCP wall", "TCP cpu",
                "records", "consumer", "");
    std::printf("%-40s %13s %7s %13s %7s %13s %7s %13s %7s %8s %8s %5s\n", "setup", "ns", "ratio", "ns", "ratio",
                "ns", "ratio", "ns", "ratio", "/connect", "ns/rec", "lost");
    for (const Row &row : rows) {
        if (!row.skipped.empty()) {
            std::printf("%-40s skipped: %s\n", row.name.c_str(), row.skipped.c_str());
            continue;
        }
        char records[32] = "-", consumer[32] = "-";
        if (row.delivered) {
            std::snprintf(records, sizeof(records), "%.3f",
                          static_cast<double>(row.delivered) / static_cast<double>(row.connects));
            std::snprintf(consumer, sizeof(consumer), "%.0f",
                          row.consumer_cpu_ns / static_cast<double>(row.delivered));
        }
        std::printf("%-40s %13.0f %7.3f %13.0f %7.3f %13.0f %7.3f %13.0f %7.3f %8s %8s %5llu\n", row.name.c_str(),
                    median(row.udp.wall), median(row.udp.wall_ratio), median(row.udp.cpu),
                    median(row.udp.cpu_ratio), median(row.tcp.wall), median(row.tcp.wall_ratio),
                    median(row.tcp.cpu), median(row.tcp.cpu_ratio), records, consumer,
                    static_cast<unsigned long long>(row.lost));
    }
}

} // namespace bench
