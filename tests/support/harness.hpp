// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Shared by the integration tests: a Session that records every event, and
// what the test process knows about itself to compare the events with.
#pragma once

#include "support/loopback.hpp"

#include <connscope/connscope.hpp>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <vector>

namespace testing {

// The backend under test: CONNSCOPE_TEST_BACKEND, or auto.
inline std::vector<std::string> backend_under_test()
{
    const char *b = std::getenv("CONNSCOPE_TEST_BACKEND");
    return {b && *b ? b : "auto"};
}

// Options for tests: the test process connects itself, so it must not be
// left out as the Session's own process (the library's default).
inline connscope::Options test_options()
{
    connscope::Options o;
    o.filters.exclude_self = false;
    return o;
}

inline std::uint32_t self_pid() { return static_cast<std::uint32_t>(::getpid()); }

// Only this process's connects: the host's own traffic stays out of the way.
inline connscope::Options own_options()
{
    connscope::Options o = test_options();
    o.filters.pids = {self_pid()};
    return o;
}

struct Recorder {
    std::vector<connscope::SecuritySocketConnect> connects;
    std::vector<connscope::NetTcpConnect> tcp;
    std::vector<connscope::ConnectOutcome> outcomes;
    connscope::Session session;

    explicit Recorder(connscope::Options options = test_options())
        : session(with_callbacks(std::move(options), this))
    {
    }

    // Polls until pred holds for some recorded connect, or the timeout passes.
    const connscope::SecuritySocketConnect *
    wait_connect(const std::function<bool(const connscope::SecuritySocketConnect &)> &pred,
                 std::chrono::milliseconds timeout = std::chrono::seconds(5))
    {
        return wait_in(connects, pred, timeout);
    }

    // Likewise for the NetTcpConnect events.
    const connscope::NetTcpConnect *wait_tcp(const std::function<bool(const connscope::NetTcpConnect &)> &pred,
                                             std::chrono::milliseconds timeout = std::chrono::seconds(5))
    {
        return wait_in(tcp, pred, timeout);
    }

    // Likewise for the ConnectOutcome events.
    const connscope::ConnectOutcome *wait_outcome(const std::function<bool(const connscope::ConnectOutcome &)> &pred,
                                                  std::chrono::milliseconds timeout = std::chrono::seconds(5))
    {
        return wait_in(outcomes, pred, timeout);
    }

private:
    template <typename Event, typename Pred>
    const Event *wait_in(const std::vector<Event> &events, const Pred &pred, std::chrono::milliseconds timeout)
    {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            for (const auto &ev : events)
                if (pred(ev))
                    return &ev;
            if (std::chrono::steady_clock::now() > deadline)
                return nullptr;
            session.poll(std::chrono::milliseconds(20));
        }
    }

    static connscope::Options with_callbacks(connscope::Options o, Recorder *self)
    {
        if (o.backends == std::vector<std::string>{"auto"})
            o.backends = backend_under_test();
        o.on_connect = [self](const connscope::SecuritySocketConnect &ev) { self->connects.push_back(ev); };
        o.on_tcp_connect = [self](const connscope::NetTcpConnect &ev) { self->tcp.push_back(ev); };
        o.on_outcome = [self](const connscope::ConnectOutcome &ev) { self->outcomes.push_back(ev); };
        return o;
    }
};

// Waits for a child to end while draining the session: other work on the
// host may fill the ring while the child runs. Returns its wait status.
int wait_child(Recorder &rec, pid_t pid);

// Whether the session's backend says it cannot see what starts with `what`.
inline bool backend_misses(const connscope::Session &session, const std::string &what)
{
    for (const auto &gap : session.backend().gaps)
        if (gap.rfind(what, 0) == 0)
            return true;
    return false;
}

// The event as JSON without what differs between two backends' records of
// one connect: the timestamp, toctou, and the Session's own numbering.
inline std::string comparable(const connscope::SecuritySocketConnect &ev)
{
    connscope::SecuritySocketConnect copy = ev;
    copy.process.timestamp_ns = 0;
    copy.toctou = false;
    copy.connect_id = 0;
    copy.sequence = 0;
    return connscope::to_json(copy);
}

// The remote endpoint if ev is an AF_INET/AF_INET6 connect.
const connscope::InetEndpoint *inet(const connscope::SecuritySocketConnect &ev);

// Matches an AF_INET/AF_INET6 connect to port made by process pid.
inline auto udp_port(std::uint16_t port, std::uint32_t pid = self_pid())
{
    return [port, pid](const connscope::SecuritySocketConnect &ev) {
        auto *ep = inet(ev);
        return ep && ep->port == port && ev.process.pid == pid;
    };
}

// Where the cgroup v2 hierarchy is mounted ("" if nowhere).
std::string cgroup2_mount();

// Whether this process holds a capability (CAP_*) in its effective set.
bool has_capability(int cap);

// Which of CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN this process lacks, comma-separated; "" when none.
std::string missing_capabilities();

// For a case that needs more than the documented capabilities (a network or
// mount namespace, another user's identity): warns naming what and returns.
#define SKIP_WITHOUT_CAPABILITY(cap, why)                                                              \
    do {                                                                                               \
        if (!testing::has_capability(cap)) {                                                           \
            WARN(#cap " is missing (" why "): skipped; the caps suite runs with only CAP_BPF, "        \
                 "CAP_PERFMON and CAP_NET_ADMIN");                                                     \
            return;                                                                                    \
        }                                                                                              \
    } while (0)

// This process's cgroup v2 path below that mount ("/..." from /proc/self/cgroup).
std::string own_cgroup_path();

inline std::uint64_t inode_of(const std::string &path)
{
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return 0;
    return st.st_ino;
}

// Ids of the BPF programs this process holds open (its Sessions' programs
// and links), from /proc/self/fdinfo: immune to other BPF users on the host.
std::vector<std::uint32_t> own_bpf_program_ids();

// Likewise for another process, sorted and without repeats.
std::vector<std::uint32_t> bpf_program_ids_of(pid_t pid);

// Whether a program with this id is still loaded anywhere on the host.
bool program_exists(std::uint32_t id);

} // namespace testing
