// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// connscope-trace: every connect() on the host, one line per event.
#include "json_out.hpp"

#include <connscope/connscope.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <getopt.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {

const char usage[] =
    "Usage: connscope-trace [OPTIONS]\n"
    "Shows every connect() on this host, one line per event (needs root).\n"
    "\n"
    "  --json               one JSON object per line (the documented contract)\n"
    "  --duration SECONDS   stop after SECONDS (default: until SIGINT/SIGTERM)\n"
    "  --backend NAME       auto (default), fentry, lsm, kprobe, cgroup, tracepoint,\n"
    "                       or a comma-separated preference list\n"
    "  --list-backends      probe every backend, print its verdict, and exit\n"
    "  --ring-size BYTES    ring buffer size: a power-of-two multiple of the page size\n"
    "  --max-latency-ms MS  longest an event waits before it is printed (default 10)\n"
    "  --no-dns             do not capture DNS answers (net_tcp_connect results stay empty)\n"
    "  --no-outcomes        do not follow connects to their outcome (no connect_outcome)\n"
    "  --dns-port N         take DNS answers from port N (repeatable; default 53)\n"
    "  --cgroup-root PATH   attach the cgroup programs (cgroup backend, DNS capture)\n"
    "                       to this cgroup v2 directory: watch only that subtree\n"
    "                       (default: the hierarchy's root, or refuse when only a\n"
    "                       subtree is reachable)\n"
    "  --stats-interval S   also write a stats record every S seconds\n"
    "  --liveness-interval S  prove every S seconds that the hooks still fire and\n"
    "                       are attached, and repair them (default 10; 0: off)\n"
    "  --verbose            show the library's diagnostics and libbpf's warnings;\n"
    "                       twice: also libbpf's debug detail (verifier logs)\n"
    "\n"
    "Filters (evaluated in the kernel; the same flag again = any of, different\n"
    "flags = all of):\n"
    "  --pid PID            connects by this process\n"
    "  --uid UID            connects by this real user id\n"
    "  --comm NAME          connects by threads of this name (comm)\n"
    "  --cgroup PATH        connects from this cgroup v2 directory or below it\n"
    "  --family F           inet, inet6 or unix\n"
    "  --port N[-M]         remote port N, or N to M\n"
    "  -h, --help           show this help\n"
    "\n"
    "At exit a stats record is written (--json: to stdout; else a line on stderr).\n";

std::atomic<bool> stop_requested{false};
int verbose = 0;

extern "C" void on_signal(int) { stop_requested = true; }

// Probing failures are expected and connscope reports their reasons, so the
// library's log (its diagnostics and libbpf's messages) is shown on request.
const char *level_name(connscope::LogLevel level)
{
    switch (level) {
    case connscope::LogLevel::error: return "error";
    case connscope::LogLevel::warning: return "warning";
    case connscope::LogLevel::info: return "info";
    case connscope::LogLevel::debug: break;
    }
    return "debug";
}

connscope::LogLevel log_level() { return verbose > 1 ? connscope::LogLevel::debug : connscope::LogLevel::info; }

void print_log(connscope::LogLevel level, const std::string &message)
{
    std::fprintf(stderr, "connscope-trace: %s: %s\n", level_name(level), message.c_str());
}

[[noreturn]] void usage_error(const std::string &msg)
{
    std::fprintf(stderr, "connscope-trace: %s\nTry 'connscope-trace --help'.\n", msg.c_str());
    std::exit(1);
}

unsigned long long parse_number(const std::string &flag, const char *text, unsigned long long max)
{
    if (!text)
        usage_error(flag + " needs a value");
    char *end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || v > max)
        usage_error(flag + ": '" + text + "' is not a number from 0 to " + std::to_string(max));
    return v;
}

std::string clock_text(std::uint64_t ns)
{
    std::time_t secs = static_cast<std::time_t>(ns / 1000000000ULL);
    std::tm tm{};
    localtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%06llu", tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<unsigned long long>(ns % 1000000000ULL / 1000));
    return buf;
}

std::string process_text(const connscope::ProcessContext &p)
{
    // A container as `docker ps` shows it: the first 12 digits of its id.
    return clock_text(p.timestamp_ns) + " pid=" + std::to_string(p.pid) + " tid=" + std::to_string(p.tid) +
           " uid=" + std::to_string(p.uid) + " comm=\"" + connscope::json_escape(p.comm) + "\"" +
           (p.container_id.empty() ? std::string() : " container=" + p.container_id.substr(0, 12));
}

struct Args {
    bool json = false;
    bool list_backends = false;
    double duration = -1;
    double stats_interval = -1;
    connscope::Options options;
};

// Long options only, as GNU getopt_long takes them: "--duration 5" and
// "--duration=5" alike, and unambiguous prefixes.
enum Opt : int {
    opt_help = 'h',
    opt_json = 256,
    opt_list_backends,
    opt_verbose,
    opt_no_dns,
    opt_no_outcomes,
    opt_duration,
    opt_ring_size,
    opt_max_latency,
    opt_stats_interval,
    opt_liveness_interval,
    opt_pid,
    opt_uid,
    opt_comm,
    opt_cgroup,
    opt_family,
    opt_port,
    opt_dns_port,
    opt_backend,
    opt_cgroup_root,
};

const option long_options[] = {
    {"help", no_argument, nullptr, opt_help},
    {"json", no_argument, nullptr, opt_json},
    {"list-backends", no_argument, nullptr, opt_list_backends},
    {"verbose", no_argument, nullptr, opt_verbose},
    {"no-dns", no_argument, nullptr, opt_no_dns},
    {"no-outcomes", no_argument, nullptr, opt_no_outcomes},
    {"duration", required_argument, nullptr, opt_duration},
    {"ring-size", required_argument, nullptr, opt_ring_size},
    {"max-latency-ms", required_argument, nullptr, opt_max_latency},
    {"stats-interval", required_argument, nullptr, opt_stats_interval},
    {"liveness-interval", required_argument, nullptr, opt_liveness_interval},
    {"pid", required_argument, nullptr, opt_pid},
    {"uid", required_argument, nullptr, opt_uid},
    {"comm", required_argument, nullptr, opt_comm},
    {"cgroup", required_argument, nullptr, opt_cgroup},
    {"family", required_argument, nullptr, opt_family},
    {"port", required_argument, nullptr, opt_port},
    {"dns-port", required_argument, nullptr, opt_dns_port},
    {"backend", required_argument, nullptr, opt_backend},
    {"cgroup-root", required_argument, nullptr, opt_cgroup_root},
    {nullptr, 0, nullptr, 0},
};

std::string flag_of(int val)
{
    for (const option *o = long_options; o->name; ++o)
        if (o->val == val)
            return std::string("--") + o->name;
    return "-" + std::string(1, static_cast<char>(val));
}

Args parse_args(int argc, char **argv)
{
    Args a;
    std::vector<std::uint16_t> dns_ports;
    opterr = 0; // the messages below say what is wrong and what to do
    for (;;) {
        const int c = getopt_long(argc, argv, ":h", long_options, nullptr);
        if (c == -1)
            break;
        const std::string flag = flag_of(c);
        const char *value = optarg;
        switch (c) {
        case opt_help:
            std::fputs(usage, stdout);
            std::exit(0);
        case opt_json:
            a.json = true;
            break;
        case opt_list_backends:
            a.list_backends = true;
            break;
        case opt_verbose:
            ++verbose;
            break;
        case opt_no_dns:
            a.options.dns.enabled = false;
            break;
        case opt_no_outcomes:
            a.options.outcomes = false;
            break;
        case opt_duration:
            a.duration = static_cast<double>(parse_number(flag, value, 31536000));
            break;
        case opt_ring_size:
            a.options.ring_size = parse_number(flag, value, 1ULL << 40);
            break;
        case opt_max_latency:
            a.options.max_latency = std::chrono::milliseconds(parse_number(flag, value, 1000000));
            break;
        case opt_stats_interval:
            a.stats_interval = static_cast<double>(parse_number(flag, value, 86400));
            if (a.stats_interval == 0)
                usage_error("--stats-interval: give at least 1 second");
            break;
        case opt_liveness_interval:
            a.options.liveness_interval = std::chrono::seconds(parse_number(flag, value, 3600));
            break;
        case opt_pid:
            a.options.filters.pids.push_back(static_cast<std::uint32_t>(parse_number(flag, value, 4194304)));
            break;
        case opt_uid:
            a.options.filters.uids.push_back(static_cast<std::uint32_t>(parse_number(flag, value, 4294967294ULL)));
            break;
        case opt_comm:
            a.options.filters.comms.push_back(value);
            break;
        case opt_cgroup:
            a.options.filters.cgroups.push_back(value);
            break;
        case opt_cgroup_root:
            if (!*value)
                usage_error("--cgroup-root: give a cgroup v2 directory");
            a.options.cgroup_root = value;
            break;
        case opt_family: {
            const std::string f = value;
            if (f == "inet")
                a.options.filters.families.push_back(AF_INET);
            else if (f == "inet6")
                a.options.filters.families.push_back(AF_INET6);
            else if (f == "unix")
                a.options.filters.families.push_back(AF_UNIX);
            else
                usage_error("--family: '" + f + "' is not one of inet, inet6, unix");
            break;
        }
        case opt_port: {
            const std::string range = value;
            const auto dash = range.find('-');
            connscope::PortRange r;
            r.first = static_cast<std::uint16_t>(parse_number(flag, range.substr(0, dash).c_str(), 65535));
            r.last = dash == std::string::npos
                         ? r.first
                         : static_cast<std::uint16_t>(parse_number(flag, range.substr(dash + 1).c_str(), 65535));
            if (r.first > r.last)
                usage_error("--port: " + range + " is an empty range");
            a.options.filters.ports.push_back(r);
            break;
        }
        case opt_dns_port:
            dns_ports.push_back(static_cast<std::uint16_t>(parse_number(flag, value, 65535)));
            break;
        case opt_backend:
            try {
                a.options.backends = connscope::parse_backend_list(value);
            } catch (const connscope::Error &e) {
                usage_error(std::string("--backend: ") + e.what());
            }
            break;
        case ':': {
            const std::string missing = flag_of(optopt);
            if (optopt == opt_family)
                usage_error(missing + " needs a value: inet, inet6 or unix");
            if (optopt == opt_port)
                usage_error(missing + " needs a value: N or N-M");
            usage_error(missing + " needs a value");
        }
        default: {
            // An unknown option, an ambiguous prefix, or a value given to a
            // flag that takes none; getopt_long has just stepped over it.
            const char *arg = argv[optind - 1];
            const std::string text = arg;
            if (const char *eq = std::strchr(arg, '='); eq && optopt > 0)
                usage_error("option '" + text.substr(0, static_cast<std::size_t>(eq - arg)) + "' takes no value");
            usage_error("unknown option '" + text + "'");
        }
        }
    }
    if (optind < argc)
        usage_error("unknown option '" + std::string(argv[optind]) + "'");
    if (!dns_ports.empty())
        a.options.dns.ports = dns_ports;
    return a;
}

int list_backends()
{
    auto verdicts = verbose ? connscope::Session::probe_backends(print_log, log_level())
                            : connscope::Session::probe_backends();
    std::string pick;
    for (const auto &v : verdicts) {
        if (v.available) {
            std::printf("%s: available\n", v.name.c_str());
            if (pick.empty())
                pick = v.name;
        } else {
            std::printf("%s: unavailable: %s\n", v.name.c_str(), v.reason.c_str());
        }
    }
    if (pick.empty())
        std::printf("auto: none (no backend works on this host)\n");
    else
        std::printf("auto: %s\n", pick.c_str());
    return pick.empty() ? 1 : 0;
}

} // namespace

int main(int argc, char **argv)
{
    Args args = parse_args(argc, argv);
    if (verbose) {
        args.options.on_log = print_log;
        args.options.log_level = log_level();
    }
    if (args.list_backends)
        return list_backends();

    const bool json = args.json;
    // --json goes through its own buffer, never stdio: one write(2) per poll()
    // return (or per full buffer) instead of formatting and a stdio call per event.
    trace::JsonOut out(STDOUT_FILENO, json ? 256 * 1024 : 0);
    args.options.on_connect = [json, &out](const connscope::SecuritySocketConnect &ev) {
        if (json) {
            out.event(ev);
            return;
        }
        std::printf("%s connect fd=%d %s %s via %s%s%s connect_id=%llu\n", process_text(ev.process).c_str(),
                    ev.sockfd, connscope::socket_type_name(ev.type).c_str(),
                    connscope::to_string(ev.remote_addr).c_str(), connscope::connect_via_name(ev.via).c_str(),
                    ev.toctou ? " (toctou)" : "", ev.late ? " (late: refused before the hook)" : "",
                    static_cast<unsigned long long>(ev.connect_id));
    };
    args.options.on_tcp_connect = [json, &out](const connscope::NetTcpConnect &ev) {
        if (json) {
            out.event(ev);
            return;
        }
        std::string names;
        for (const auto &n : ev.results)
            names += (names.empty() ? "" : ",") + connscope::json_escape(n);
        std::printf("%s tcp %s port %u names=%s\n", process_text(ev.process).c_str(), ev.dst_ip.c_str(),
                    ev.dst_port, names.empty() ? "-" : names.c_str());
    };

    args.options.on_outcome = [json, &out](const connscope::ConnectOutcome &ev) {
        if (json) {
            out.event(ev);
            return;
        }
        std::string detail = ev.result ? " result=" + std::to_string(*ev.result) : std::string(" result=-");
        if (ev.lsm == connscope::LsmVerdict::denied)
            detail += " lsm_error=" + std::to_string(ev.lsm_error);
        if (ev.tcp_error)
            detail += " tcp_error=" + std::to_string(ev.tcp_error);
        if (ev.local)
            detail += " local=" + connscope::to_string(connscope::SocketAddress{*ev.local});
        std::printf("pid=%u tid=%u outcome %s connect_id=%llu%s in %.3f ms\n", ev.pid, ev.tid,
                    connscope::outcome_name(ev).c_str(), static_cast<unsigned long long>(ev.connect_id),
                    detail.c_str(), static_cast<double>(ev.duration_ns) / 1e6);
    };

    // Health events go where the events go: a record in the JSON stream, else a line on stderr.
    args.options.on_health = [json, &out](const connscope::HealthEvent &ev) {
        if (json)
            out.line(connscope::to_json(ev));
        else
            std::fprintf(stderr, "connscope-trace: health: %s: %s\n", connscope::health_kind_name(ev.kind),
                         ev.message.c_str());
    };

    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    try {
        connscope::Session session(std::move(args.options));
        const auto &b = session.backend();
        std::fprintf(stderr, "connscope-trace: watching (backend %s: %s); cgroup scope: %s\n", b.name.c_str(),
                     b.reason.c_str(), b.cgroup_scope.c_str());
        for (const auto &gap : b.gaps)
            std::fprintf(stderr, "connscope-trace: backend %s does not see %s\n", b.name.c_str(), gap.c_str());
        std::fprintf(stderr, "connscope-trace: DNS capture %s\n", b.dns.c_str());
        std::fflush(stderr);

        auto print_stats = [&] {
            auto stats = session.stats();
            if (json) {
                out.line(connscope::to_json(stats, b.name));
                out.flush();
            } else {
                // The DNS cache's bound and where its names went, when the default cache runs.
                if (stats.dns_cache_bytes_max) {
                    const auto mib = [](std::uint64_t v) { return static_cast<double>(v) / (1024.0 * 1024.0); };
                    std::fprintf(stderr,
                                 "connscope-trace: DNS cache %llu names in %.1f MiB of its %.1f MiB bound "
                                 "(%.1f MiB allocated), %llu budget groups; evicted %llu (own budget %llu, "
                                 "global bound %llu), expired %llu; DNS records lost %llu (ring past its DNS "
                                 "limit %llu)\n",
                                 static_cast<unsigned long long>(stats.dns_cache_entries), mib(stats.dns_cache_bytes),
                                 mib(stats.dns_cache_bytes_max), mib(stats.dns_cache_bytes_allocated),
                                 static_cast<unsigned long long>(stats.dns_cache_budget_groups),
                                 static_cast<unsigned long long>(stats.dns_names_evicted),
                                 static_cast<unsigned long long>(stats.dns_evicted_budget),
                                 static_cast<unsigned long long>(stats.dns_evicted_global),
                                 static_cast<unsigned long long>(stats.dns_expired),
                                 static_cast<unsigned long long>(stats.lost_ring_dns),
                                 static_cast<unsigned long long>(stats.dns_dropped_reserve));
                }
                std::fprintf(stderr, "connscope-trace: %llu events, %llu lost (backend %s)\n",
                             static_cast<unsigned long long>(stats.events),
                             static_cast<unsigned long long>(stats.lost), b.name.c_str());
                std::fflush(stdout);
            }
        };
        const auto start = std::chrono::steady_clock::now();
        auto deadline = start + std::chrono::milliseconds(static_cast<long long>(args.duration * 1000));
        auto next_stats = start + std::chrono::milliseconds(static_cast<long long>(args.stats_interval * 1000));
        while (!stop_requested) {
            if (args.stats_interval > 0 && std::chrono::steady_clock::now() >= next_stats) {
                print_stats();
                next_stats += std::chrono::milliseconds(static_cast<long long>(args.stats_interval * 1000));
            }
            auto wait = std::chrono::milliseconds(100);
            if (args.duration >= 0) {
                auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now());
                if (left.count() <= 0)
                    break;
                wait = std::min(wait, left);
            }
            session.poll(wait);
            if (json) {
                out.flush();
                if (out.failed())
                    break;
            } else {
                std::fflush(stdout);
            }
        }
        session.consume(); // drain what arrived before the stop
        print_stats();
        if (out.failed()) {
            std::fprintf(stderr, "connscope-trace: writing the JSON output: %s\n", std::strerror(out.error()));
            return 1;
        }
    } catch (const connscope::Error &e) {
        std::fprintf(stderr, "connscope-trace: %s\n", e.what());
        return 1;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "connscope-trace: %s\n", e.what());
        return 1;
    }
    return 0;
}
