// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// What a connect costs when an in-kernel filter drops it (a pid outside
// Options::filters' pid set): as a ratio to untraced, next to the no-op hook
// (the floor) and to the same Session without a filter.
#include "harness.hpp"

#include <connscope/session.hpp>

namespace {

enum class Scope { everything, other_pid, default_self };

std::function<std::unique_ptr<bench::Tracer>()> session(Scope scope, std::uint32_t other)
{
    return [=]() -> std::unique_ptr<bench::Tracer> {
        connscope::Options o;
        o.backends = {"cgroup"};
        // default_self keeps the default (exclude_self): it drops this
        // process's connects too, by a different test in the same program.
        if (scope != Scope::default_self)
            bench::exclude_self(o, false);
        if (scope == Scope::other_pid)
            bench::only_pid(o, other);
        return std::make_unique<bench::SessionTracer>(std::move(o));
    };
}

} // namespace

int main(int argc, char **argv)
{
    bench::require_root("filter_cost");
    if constexpr (!bench::have_pid_filter) {
        std::printf("filter API not available: connscope::Options has no filters.pids in this build "
                    "(include/connscope/session.hpp); nothing measured\n");
        return 77;
    }
    const bench::Sizes sizes = bench::parse_sizes(argc, argv, bench::Sizes{});

    // A pid that exists but never connects: the set admits only it, so every
    // connect this process makes is filtered out.
    const bench::ChildProcess idle([] { ::pause(); });
    const auto other = static_cast<std::uint32_t>(idle.pid());
    using Kind = bench::ReferenceTracer::Kind;
    const std::vector<bench::Config> configs{
        {"untraced", nullptr, false},
        {"no-op cgroup/connect4 (floor)", [] { return std::make_unique<bench::ReferenceTracer>(Kind::noop); },
         false},
        {"Session cgroup, no filter", session(Scope::everything, other), false},
        {"Session cgroup, pids={other}: dropped", session(Scope::other_pid, other), true},
        {"Session cgroup, exclude_self: dropped", session(Scope::default_self, other), true},
    };
    std::fprintf(stderr, "filter_cost: %zu setups\n", configs.size());
    const auto rows = bench::run_interleaved(configs, sizes);
    bench::print_rows(rows, sizes);

    std::printf("\nfiltered-out connect (cgroup backend), ratio to untraced; the floor is any cgroup hook:\n");
    const auto &floor = rows[1];
    for (const auto &row : rows) {
        if (!row.has_goal || !row.skipped.empty())
            continue;
        // Other processes on the host still produce records; this process's
        // connects must not, so far fewer than one record per connect.
        std::printf("  %-40s UDP wall %.3f cpu %.3f (floor %.3f %.3f)  TCP wall %.3f cpu %.3f (floor %.3f %.3f)"
                    "  records/connect %.4f\n",
                    row.name.c_str(), bench::median(row.udp.wall_ratio), bench::median(row.udp.cpu_ratio),
                    bench::median(floor.udp.wall_ratio), bench::median(floor.udp.cpu_ratio),
                    bench::median(row.tcp.wall_ratio), bench::median(row.tcp.cpu_ratio),
                    bench::median(floor.tcp.wall_ratio), bench::median(floor.tcp.cpu_ratio),
                    static_cast<double>(row.delivered) / static_cast<double>(row.connects));
    }
    return 0;
}
