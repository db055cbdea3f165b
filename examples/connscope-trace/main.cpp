// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// connscope-trace: every connect() on the host, one line per event.
#include <connscope/connscope.hpp>

#include <bpf/libbpf.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <sys/socket.h>
#include <vector>

namespace {

const char usage[] =
    "Usage: connscope-trace [OPTIONS]\n"
    "Shows every connect() on this host, one line per event (needs root).\n"
    "\n"
    "  --json               one JSON object per line (the documented contract)\n"
    "  --duration SECONDS   stop after SECONDS (default: until SIGINT/SIGTERM)\n"
    "  --backend NAME       auto (default), lsm, fentry, kprobe, cgroup, tracepoint,\n"
    "                       or a comma-separated preference list\n"
    "  --list-backends      probe every backend, print its verdict, and exit\n"
    "  --ring-size BYTES    ring buffer size: a power-of-two multiple of the page size\n"
    "  --max-latency-ms MS  longest an event waits before it is printed (default 10)\n"
    "  --no-dns             do not capture DNS answers (net_tcp_connect results stay empty)\n"
    "  --dns-port N         take DNS answers from port N (repeatable; default 53)\n"
    "  --stats-interval S   also write a stats record every S seconds\n"
    "  --verbose            show libbpf's own messages\n"
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
bool verbose = false;

extern "C" void on_signal(int) { stop_requested = true; }

// Probing failures are expected and connscope reports their reasons, so
// libbpf's own messages are shown only on request.
extern "C" int print_libbpf_message(enum libbpf_print_level, const char *fmt, va_list args)
{
    return verbose ? std::vfprintf(stderr, fmt, args) : 0;
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
    return clock_text(p.timestamp_ns) + " pid=" + std::to_string(p.pid) + " tid=" + std::to_string(p.tid) +
           " uid=" + std::to_string(p.uid) + " comm=\"" + connscope::json_escape(p.comm) + "\"";
}

struct Args {
    bool json = false;
    bool list_backends = false;
    double duration = -1;
    double stats_interval = -1;
    connscope::Options options;
};

Args parse_args(int argc, char **argv)
{
    Args a;
    std::vector<std::uint16_t> dns_ports;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : nullptr;
        if (arg == "-h" || arg == "--help") {
            std::fputs(usage, stdout);
            std::exit(0);
        } else if (arg == "--json") {
            a.json = true;
        } else if (arg == "--list-backends") {
            a.list_backends = true;
        } else if (arg == "--verbose") {
            verbose = true;
        } else if (arg == "--no-dns") {
            a.options.dns.enabled = false;
        } else if (arg == "--duration") {
            a.duration = static_cast<double>(parse_number(arg, next, 31536000));
            ++i;
        } else if (arg == "--ring-size") {
            a.options.ring_size = parse_number(arg, next, 1ULL << 40);
            ++i;
        } else if (arg == "--max-latency-ms") {
            a.options.max_latency = std::chrono::milliseconds(parse_number(arg, next, 1000000));
            ++i;
        } else if (arg == "--stats-interval") {
            a.stats_interval = static_cast<double>(parse_number(arg, next, 86400));
            if (a.stats_interval == 0)
                usage_error("--stats-interval: give at least 1 second");
            ++i;
        } else if (arg == "--pid") {
            a.options.filters.pids.push_back(static_cast<std::uint32_t>(parse_number(arg, next, 4194304)));
            ++i;
        } else if (arg == "--uid") {
            a.options.filters.uids.push_back(static_cast<std::uint32_t>(parse_number(arg, next, 4294967294ULL)));
            ++i;
        } else if (arg == "--comm") {
            if (!next)
                usage_error("--comm needs a value");
            a.options.filters.comms.push_back(next);
            ++i;
        } else if (arg == "--cgroup") {
            if (!next)
                usage_error("--cgroup needs a value");
            a.options.filters.cgroups.push_back(next);
            ++i;
        } else if (arg == "--family") {
            if (!next)
                usage_error("--family needs a value: inet, inet6 or unix");
            std::string f = next;
            if (f == "inet")
                a.options.filters.families.push_back(AF_INET);
            else if (f == "inet6")
                a.options.filters.families.push_back(AF_INET6);
            else if (f == "unix")
                a.options.filters.families.push_back(AF_UNIX);
            else
                usage_error("--family: '" + f + "' is not one of inet, inet6, unix");
            ++i;
        } else if (arg == "--port") {
            if (!next)
                usage_error("--port needs a value: N or N-M");
            std::string range = next;
            auto dash = range.find('-');
            connscope::PortRange r;
            r.first = static_cast<std::uint16_t>(parse_number(arg, range.substr(0, dash).c_str(), 65535));
            r.last = dash == std::string::npos
                         ? r.first
                         : static_cast<std::uint16_t>(parse_number(arg, range.substr(dash + 1).c_str(), 65535));
            if (r.first > r.last)
                usage_error("--port: " + range + " is an empty range");
            a.options.filters.ports.push_back(r);
            ++i;
        } else if (arg == "--dns-port") {
            dns_ports.push_back(static_cast<std::uint16_t>(parse_number(arg, next, 65535)));
            ++i;
        } else if (arg == "--backend") {
            if (!next)
                usage_error("--backend needs a value");
            try {
                a.options.backends = connscope::parse_backend_list(next);
            } catch (const connscope::Error &e) {
                usage_error(std::string("--backend: ") + e.what());
            }
            ++i;
        } else {
            usage_error("unknown option '" + arg + "'");
        }
    }
    if (!dns_ports.empty())
        a.options.dns.ports = dns_ports;
    return a;
}

int list_backends()
{
    auto verdicts = connscope::Session::probe_backends();
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
    libbpf_set_print(print_libbpf_message);
    if (args.list_backends)
        return list_backends();

    const bool json = args.json;
    args.options.on_connect = [json](const connscope::SecuritySocketConnect &ev) {
        if (json) {
            std::puts(connscope::to_json(ev).c_str());
            return;
        }
        std::printf("%s connect fd=%d %s %s%s\n", process_text(ev.process).c_str(), ev.sockfd,
                    connscope::socket_type_name(ev.type).c_str(), connscope::to_string(ev.remote_addr).c_str(),
                    ev.toctou ? " (toctou)" : "");
    };
    args.options.on_tcp_connect = [json](const connscope::NetTcpConnect &ev) {
        if (json) {
            std::puts(connscope::to_json(ev).c_str());
            return;
        }
        std::string names;
        for (const auto &n : ev.results)
            names += (names.empty() ? "" : ",") + connscope::json_escape(n);
        std::printf("%s tcp %s port %u names=%s\n", process_text(ev.process).c_str(), ev.dst_ip.c_str(),
                    ev.dst_port, names.empty() ? "-" : names.c_str());
    };

    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    try {
        connscope::Session session(std::move(args.options));
        const auto &b = session.backend();
        std::fprintf(stderr, "connscope-trace: watching (backend %s: %s)\n", b.name.c_str(), b.reason.c_str());
        for (const auto &gap : b.gaps)
            std::fprintf(stderr, "connscope-trace: backend %s does not see %s\n", b.name.c_str(), gap.c_str());
        std::fprintf(stderr, "connscope-trace: DNS capture %s\n", b.dns.c_str());
        std::fflush(stderr);

        auto print_stats = [&] {
            auto stats = session.stats();
            if (json)
                std::puts(connscope::to_json(stats, b.name).c_str());
            else
                std::fprintf(stderr, "connscope-trace: %llu events, %llu lost (backend %s)\n",
                             static_cast<unsigned long long>(stats.events),
                             static_cast<unsigned long long>(stats.lost), b.name.c_str());
            std::fflush(stdout);
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
            std::fflush(stdout);
        }
        session.consume(); // drain what arrived before the stop
        print_stats();
    } catch (const connscope::Error &e) {
        std::fprintf(stderr, "connscope-trace: %s\n", e.what());
        return 1;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "connscope-trace: %s\n", e.what());
        return 1;
    }
    return 0;
}
