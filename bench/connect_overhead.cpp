// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// What watching connects costs the process that connects: ns per connect
// untraced, under a no-op hook (the floor), under each usable backend of a
// Session, and under a reference that wakes its consumer per event.
#include "harness.hpp"

#include <connscope/session.hpp>

namespace {

constexpr double udp_goal = 1.10;
constexpr double tcp_goal = 1.03;

std::function<std::unique_ptr<bench::Tracer>()> session(const std::string &backend, bool dns,
                                                        std::chrono::milliseconds max_latency,
                                                        std::chrono::milliseconds liveness = std::chrono::seconds(10),
                                                        bool outcomes = true, bool take_outcomes = false)
{
    return [=]() -> std::unique_ptr<bench::Tracer> {
        connscope::Options o;
        o.backends = {backend};
        o.outcomes = outcomes;
        // Outcomes are followed only for a Session that takes them.
        if (take_outcomes)
            o.on_outcome = [](const connscope::ConnectOutcome &) {};
        o.dns.enabled = dns;
        o.max_latency = max_latency;
        o.liveness_interval = liveness;
        bench::exclude_self(o, false); // the loops run in this process
        return std::make_unique<bench::SessionTracer>(std::move(o));
    };
}

// Where the time of a setup goes: the kernel's own count of each of its BPF
// programs' run time (BPF_ENABLE_STATS) over a UDP and a TCP loop. Stats add
// a clock read per run, so this is a separate pass, not part of the timings.
void profile(const std::vector<bench::Config> &configs, std::size_t udp_n, std::size_t tcp_n)
{
    const int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
    if (stats_fd < 0) {
        std::printf("\n(BPF run-time stats unavailable: %s)\n", std::strerror(errno));
        return;
    }
    std::printf("\nBPF program run time (BPF_ENABLE_STATS; a separate pass of %zu UDP + %zu TCP connects):\n",
                udp_n, tcp_n);
    bench::Listener listener;
    for (const auto &config : configs) {
        if (!config.make)
            continue;
        const auto before = bench::prog_ids();
        std::unique_ptr<bench::Tracer> tracer;
        try {
            tracer = config.make();
        } catch (const std::exception &) {
            continue;
        }
        const auto ours = bench::new_prog_ids(before);
        const auto start = bench::prog_times(ours);
        bench::udp_loop(udp_n);
        bench::tcp_loop(listener, tcp_n);
        const auto end = bench::prog_times(ours);
        tracer->finish();
        std::printf("  %s\n", config.name.c_str());
        for (std::size_t i = 0; i < end.size() && i < start.size(); ++i) {
            const __u64 runs = end[i].runs - start[i].runs;
            if (runs == 0)
                continue;
            std::printf("    %-28s %9llu runs %8.0f ns/run\n", end[i].name.c_str(),
                        static_cast<unsigned long long>(runs),
                        static_cast<double>(end[i].run_ns - start[i].run_ns) / static_cast<double>(runs));
        }
    }
    ::close(stats_fd);
}

} // namespace

int main(int argc, char **argv)
{
    bench::require_root("connect_overhead");
    const bench::Sizes sizes = bench::parse_sizes(argc, argv, bench::Sizes{});
    using Kind = bench::ReferenceTracer::Kind;
    const auto ms = [](int n) { return std::chrono::milliseconds(n); };

    // Which backends this kernel allows, and how each one would run.
    std::vector<std::string> usable;
    std::printf("backends on this kernel:\n");
    // Refusals are expected while probing; their reasons are printed below.
    const auto libbpf_print = libbpf_set_print(nullptr);
    const auto statuses = connscope::Session::probe_backends();
    libbpf_set_print(libbpf_print);
    for (const auto &status : statuses) {
        std::printf("  %-10s %s\n", status.name.c_str(), status.available ? "usable" : status.reason.c_str());
        if (status.available)
            usable.push_back(status.name);
    }
    for (const auto &name : usable) {
        connscope::Options o;
        o.backends = {name};
        connscope::Session s(std::move(o));
        std::printf("  %-10s -> %s\n", name.c_str(), s.backend().reason.c_str());
    }

    std::vector<bench::Config> configs;
    configs.push_back({"untraced", nullptr, false});
    configs.push_back({"no-op cgroup/connect4 (floor)",
                       [=] { return std::make_unique<bench::ReferenceTracer>(Kind::noop); }, false});
    for (const auto &name : usable) {
        configs.push_back({"Session " + name + " (defaults)", session(name, true, ms(10)), true});
        configs.push_back({"Session " + name + ", dns off", session(name, false, ms(10)), false});
    }
    configs.push_back({"reference: wakeup per record",
                       [=] { return std::make_unique<bench::ReferenceTracer>(Kind::wakeup); }, false});
    if (!usable.empty()) {
        configs.push_back({"reference: Session " + usable.front() + " max_latency=1ms",
                           session(usable.front(), true, ms(1)), false});
        // The liveness canary's cost: the defaults' row (a round per 10 s)
        // against none, and against a round every second.
        configs.push_back({"reference: Session " + usable.front() + ", liveness off",
                           session(usable.front(), true, ms(10), ms(0)), false});
        configs.push_back({"reference: Session " + usable.front() + ", liveness every 1 s",
                           session(usable.front(), true, ms(10), ms(1000)), false});
        // What following each connect to its outcome costs: a Session that
        // takes outcomes, and one with Options::outcomes off (no refused
        // connect(2)s either), against the defaults' row (no on_outcome:
        // refused connect(2)s only).
        configs.push_back({"reference: Session " + usable.front() + ", on_outcome set",
                           session(usable.front(), true, ms(10), ms(10000), true, true), false});
        configs.push_back({"reference: Session " + usable.front() + ", outcomes off",
                           session(usable.front(), true, ms(10), ms(10000), false), false});
    }

    std::fprintf(stderr, "connect_overhead: %zu setups\n", configs.size());
    const auto rows = bench::run_interleaved(configs, sizes);
    bench::print_rows(rows, sizes);

    auto profiled = configs;
    profiled.push_back({"breakdown: header-only record, no wakeup",
                        [=] { return std::make_unique<bench::ReferenceTracer>(Kind::ring_only); }, false});
    profiled.push_back({"breakdown: record + process context",
                        [=] { return std::make_unique<bench::ReferenceTracer>(Kind::process); }, false});
    profile(profiled, sizes.udp, sizes.tcp);

    std::printf("\ngoals (median ratio to untraced; UDP <= %.2f, TCP <= %.2f):\n", udp_goal, tcp_goal);
    auto verdict = [](double ratio, double goal) { return ratio <= goal ? "met " : "MISS"; };
    const auto &floor = rows[1];
    for (const auto &row : rows) {
        if (!(row.has_goal || &row == &floor) || !row.skipped.empty())
            continue;
        const double uw = bench::median(row.udp.wall_ratio), uc = bench::median(row.udp.cpu_ratio);
        const double tw = bench::median(row.tcp.wall_ratio), tc = bench::median(row.tcp.cpu_ratio);
        if (&row == &floor) // what any cgroup hook costs: no library gets below it
            std::printf("  %-34s UDP wall %.3f cpu %.3f       TCP wall %.3f cpu %.3f  (the floor)\n",
                        row.name.c_str(), uw, uc, tw, tc);
        else
            std::printf("  %-34s UDP wall %.3f %s cpu %.3f %s  TCP wall %.3f %s cpu %.3f %s\n", row.name.c_str(),
                        uw, verdict(uw, udp_goal), uc, verdict(uc, udp_goal), tw, verdict(tw, tcp_goal), tc,
                        verdict(tc, tcp_goal));
    }
    return 0;
}
