// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// "Watching" is a promise: the constructor returns only once the Session's
// own canary came back through the ring, every connect after it is
// reported, and a link detached while running is found, reported and
// attached again.
#include <catch2/catch.hpp>

#include "support/harness.hpp"
#include "support/loopback.hpp"
#include "support/process.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace connscope;

namespace {

int startups_to_run()
{
    const char *n = std::getenv("CONNSCOPE_STARTUPS");
    return n && *n ? std::atoi(n) : 100;
}

// A child that connects to port at once and exits: a process the Session
// has never seen, as in a shell that starts the tracer and then connects.
pid_t connect_in_child(std::uint16_t port)
{
    const pid_t pid = ::fork();
    if (pid == 0) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        const sockaddr_in to = testing::inet4("127.0.0.1", port);
        const int rc = ::connect(fd, reinterpret_cast<const sockaddr *>(&to), sizeof(to));
        ::_exit(rc == 0 ? 0 : 1);
    }
    return pid;
}

// The ids of this process's BPF links of one attach type ("cgroup_inet4_connect"):
// bpftool's links whose program this process holds. Empty when bpftool is missing.
std::vector<std::string> own_link_ids(const std::string &attach_type)
{
    FILE *p = ::popen("bpftool -j link show 2>/dev/null", "r");
    if (!p)
        return {};
    std::string json;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;)
        json.append(buf, n);
    ::pclose(p);
    const auto own_programs = testing::own_bpf_program_ids();
    // One flat object per link: a small scan, no JSON library.
    std::vector<std::string> ids;
    for (size_t at = 0; (at = json.find("{\"id\":", at)) != std::string::npos; ++at) {
        const std::string link = json.substr(at, json.find('}', at) - at);
        const auto field = [&link](const std::string &key) {
            const size_t k = link.find("\"" + key + "\":");
            if (k == std::string::npos)
                return std::string();
            const size_t v = k + key.size() + 3;
            return link.substr(v, link.find_first_of(",}", v) - v);
        };
        const std::string prog = field("prog_id");
        if (field("attach_type") != "\"" + attach_type + "\"" || prog.empty())
            continue;
        for (auto id : own_programs)
            if (std::to_string(id) == prog) {
                ids.push_back(field("id"));
                break; // a link's fd names its program too
            }
    }
    return ids;
}

} // namespace

TEST_CASE("every start-up is proven: the connects right after it are all reported", "[liveness]")
{
    testing::TcpListener listener;
    const int runs = startups_to_run();
    int missed_self = 0, missed_child = 0;
    for (int i = 0; i < runs; ++i) {
        Options o = testing::test_options();
        o.dns.enabled = i % 10 == 0; // the DNS capture's start-up too, now and then
        testing::Recorder rec(o);
        // At once: this process, then one that did not exist when the hooks attached.
        const std::uint16_t udp = testing::free_port(SOCK_DGRAM);
        testing::udp_connect(udp);
        const pid_t child = connect_in_child(listener.port);
        REQUIRE(testing::wait_child(rec, child) == 0);
        ::close(::accept(listener.fd, nullptr, nullptr)); // keep the backlog free
        if (!rec.wait_connect(testing::udp_port(udp)))
            ++missed_self;
        if (!rec.wait_connect(testing::udp_port(listener.port, static_cast<std::uint32_t>(child))))
            ++missed_child;
        const Stats st = rec.session.stats();
        CHECK(st.canaries_sent >= 1);
        CHECK(st.lost == 0);
    }
    INFO(runs << " start-ups on backend " << testing::backend_under_test()[0]);
    CHECK(missed_self == 0);
    CHECK(missed_child == 0);
}

TEST_CASE("canaries pass every filter and are never delivered", "[liveness]")
{
    Options o = testing::test_options();
    o.dns.enabled = false;
    o.filters.pids = {1}; // nothing of this process's passes, but the canary must
    o.liveness_interval = std::chrono::milliseconds(1000);
    std::vector<HealthEvent> health;
    o.on_health = [&health](const HealthEvent &e) { health.push_back(e); };
    testing::Recorder rec(o); // throws Errc::hook_not_firing if the filter hid the canary
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(2600);
    while (std::chrono::steady_clock::now() < end)
        rec.session.poll(std::chrono::milliseconds(50));
    const Stats st = rec.session.stats();
    CHECK(st.canaries_sent >= 3); // the start-up's and two rounds
    CHECK(st.canaries_missed == 0);
    CHECK(health.empty());
    CHECK(st.events == 0); // the canaries are not events
    for (const auto &ev : rec.connects)
        CHECK(ev.process.pid != testing::self_pid());

    // With this process included, still no canary reaches the callbacks.
    Options mine = testing::own_options();
    mine.dns.enabled = false;
    mine.liveness_interval = std::chrono::milliseconds(1000);
    testing::Recorder own(mine);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1600);
    while (std::chrono::steady_clock::now() < until)
        own.session.poll(std::chrono::milliseconds(50));
    CHECK(own.session.stats().canaries_sent >= 2);
    for (const auto &ev : own.connects)
        CHECK(ev.type != SocketType::dgram); // the canaries are the only UDP connects made here
}

TEST_CASE("a link detached while running is reported, attached again, and the gap counted", "[liveness]")
{
    Options o = testing::own_options();
    o.backends = {"cgroup"};
    o.dns.enabled = true;
    o.liveness_interval = std::chrono::milliseconds(1000);
    std::vector<HealthEvent> health;
    o.on_health = [&health](const HealthEvent &e) { health.push_back(e); };
    std::unique_ptr<testing::Recorder> rec;
    try {
        rec = std::make_unique<testing::Recorder>(o);
    } catch (const Error &e) {
        WARN("the cgroup backend does not start here: " << e.what());
        return;
    }
    const auto ids = own_link_ids("cgroup_inet4_connect");
    if (ids.empty()) {
        WARN("bpftool is missing or lists no link of this process: nothing to detach");
        return;
    }
    REQUIRE(ids.size() == 2); // the backend's connect4 and the DNS capture's mark
    for (const auto &id : ids)
        REQUIRE(std::system(("bpftool link detach id " + id).c_str()) == 0);

    const auto detached_at = std::chrono::steady_clock::now();
    auto reattached = [&health] {
        for (const auto &h : health)
            if (h.kind == HealthKind::reattached)
                return true;
        return false;
    };
    while (!reattached() && std::chrono::steady_clock::now() - detached_at < std::chrono::seconds(5))
        rec->session.poll(std::chrono::milliseconds(50));
    REQUIRE(reattached());
    // Found within the interval (plus the poll's own granularity).
    CHECK(std::chrono::steady_clock::now() - detached_at < std::chrono::milliseconds(1500));

    int detached_reports = 0;
    for (const auto &h : health) {
        if (h.kind == HealthKind::link_detached) {
            ++detached_reports;
            CHECK(h.what.find("cgroup/connect4") != std::string::npos);
            CHECK(h.message.find("no longer attached") != std::string::npos);
            CHECK(h.timestamp_ns > 0);
        }
    }
    CHECK(detached_reports == 2);
    const Stats st = rec->session.stats();
    CHECK(st.links_detached == 2);
    CHECK(st.reattachments == 1);
    CHECK(st.unwatched_ns > 0);
    CHECK(st.unwatched_ns < 3000000000ULL);
    CHECK(own_link_ids("cgroup_inet4_connect").size() == 2);

    // Events again after the repair, and the next round passes.
    const std::uint16_t port = testing::free_port(SOCK_DGRAM);
    testing::udp_connect(port);
    CHECK(rec->wait_connect(testing::udp_port(port)) != nullptr);
    const auto calm = std::chrono::steady_clock::now() + std::chrono::milliseconds(1300);
    while (std::chrono::steady_clock::now() < calm)
        rec->session.poll(std::chrono::milliseconds(50));
    CHECK(rec->session.stats().canaries_missed == 0);
    CHECK(rec->session.stats().reattachments == 1);
}

TEST_CASE("liveness and start-up options are checked", "[liveness]")
{
    Options o = testing::test_options();
    o.liveness_interval = std::chrono::milliseconds(500);
    CHECK_THROWS_WITH(Session(o), Catch::Contains("liveness_interval 500 ms is out of range"));
    o.liveness_interval = std::chrono::milliseconds(0); // off is allowed
    o.startup_timeout = std::chrono::milliseconds(50);
    CHECK_THROWS_WITH(Session(o), Catch::Contains("startup_timeout 50 ms is out of range"));
}
