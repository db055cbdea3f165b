// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// In-kernel scope filters, each on its own and changed while running, and
// the accounting identity: delivered + lost = produced, exactly.
#include <catch2/catch.hpp>

#include <linux/capability.h>

#include "support/cgroup.hpp"
#include "support/harness.hpp"

#include <arpa/inet.h>
#include <fstream>
#include <map>
#include <sstream>
#include <sys/stat.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace connscope;
using testing::inet;
using testing::Recorder;

namespace {

void udp_connect(std::uint16_t port, int family = AF_INET)
{
    int fd = ::socket(family, SOCK_DGRAM, 0);
    if (family == AF_INET) {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::connect(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin));
    } else {
        sockaddr_in6 sin6{};
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(port);
        sin6.sin6_addr = in6addr_loopback;
        ::connect(fd, reinterpret_cast<sockaddr *>(&sin6), sizeof(sin6));
    }
    ::close(fd);
}

// Runs fn in a child process and waits for it; returns the child's pid.
template <typename Fn>
pid_t in_child(Fn fn)
{
    pid_t pid = ::fork();
    if (pid == 0) {
        fn();
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return pid;
}

bool seen_port(Recorder &rec, std::uint16_t port, std::chrono::milliseconds wait = std::chrono::milliseconds(300))
{
    return rec.wait_connect([port](const SecuritySocketConnect &e) { return inet(e) && inet(e)->port == port; },
                            wait) != nullptr;
}

} // namespace

TEST_CASE("exclude_self: the Session's own connects are left out by default", "[filter]")
{
    Options o; // library defaults
    Recorder rec(o);
    CHECK(o.filters.exclude_self);
    udp_connect(41001);
    pid_t child = in_child([] { udp_connect(41002); });
    CHECK(rec.wait_connect([child](const SecuritySocketConnect &e) {
        return inet(e) && inet(e)->port == 41002 && e.process.pid == static_cast<std::uint32_t>(child);
    }));
    CHECK_FALSE(seen_port(rec, 41001, std::chrono::milliseconds(50)));
}

TEST_CASE("pid filter, and changing it while running", "[filter]")
{
    Options o = testing::test_options();
    o.filters.pids = {static_cast<std::uint32_t>(::getpid())};
    Recorder rec(o);
    udp_connect(41011);
    in_child([] { udp_connect(41012); });
    CHECK(seen_port(rec, 41011));
    CHECK_FALSE(seen_port(rec, 41012));

    Filters f = o.filters;
    f.pids = {1}; // init: this process is now outside the set
    rec.session.set_filters(f);
    udp_connect(41013);
    CHECK_FALSE(seen_port(rec, 41013));
    rec.session.set_filters(testing::test_options().filters); // back to everything
    udp_connect(41014);
    CHECK(seen_port(rec, 41014));
}

TEST_CASE("uid filter", "[filter]")
{
    SKIP_WITHOUT_CAPABILITY(CAP_SETUID, "a child of another uid");
    Options o = testing::test_options();
    o.filters.uids = {4242};
    Recorder rec(o);
    udp_connect(41021);
    in_child([] {
        if (::setuid(4242) == 0)
            udp_connect(41022);
    });
    CHECK(seen_port(rec, 41022));
    CHECK_FALSE(seen_port(rec, 41021, std::chrono::milliseconds(50)));
}

TEST_CASE("comm filter", "[filter]")
{
    Options o = testing::test_options();
    o.filters.comms = {"cs-filtered"};
    Recorder rec(o);
    udp_connect(41031);
    in_child([] {
        ::prctl(PR_SET_NAME, "cs-filtered");
        udp_connect(41032);
    });
    CHECK(seen_port(rec, 41032));
    CHECK_FALSE(seen_port(rec, 41031, std::chrono::milliseconds(50)));
}

TEST_CASE("cgroup filter matches the cgroup and everything below it", "[filter]")
{
    SKIP_WITHOUT_CAPABILITY(CAP_DAC_OVERRIDE, "making a cgroup in the root-owned hierarchy");
    Options o = testing::test_options();
    o.filters.cgroups = {testing::own_cgroup_path()};
    Recorder rec(o);
    udp_connect(41041);
    CHECK(seen_port(rec, 41041));
    if (testing::cgroup2_mount().empty()) {
        WARN("no cgroup2 mount to make a cgroup in (a cgroup v1-only host; the Session uses a private mount): "
             "the rest skipped");
        return;
    }

    // A cgroup that holds no process of ours: nothing of ours matches.
    Filters none = o.filters;
    testing::ScratchCgroups empty_cg("connscope-test-" + std::to_string(::getpid()));
    INFO(empty_cg.error());
    REQUIRE(empty_cg.ok());
    none.cgroups = {empty_cg.path()};
    rec.session.set_filters(none);
    udp_connect(41042);
    CHECK_FALSE(seen_port(rec, 41042));

    Filters missing = o.filters;
    missing.cgroups = {"/no/such/cgroup"};
    CHECK_THROWS_AS(rec.session.set_filters(missing), Error);
}

TEST_CASE("family and port filters", "[filter]")
{
    Options o = testing::test_options();
    o.filters.families = {AF_INET6};
    o.filters.ports = {{41050, 41059}, {41070, 41070}};
    Recorder rec(o);
    udp_connect(41051, AF_INET6);
    udp_connect(41052, AF_INET);   // wrong family
    udp_connect(41060, AF_INET6);  // outside the ranges
    udp_connect(41070, AF_INET6);  // the single-port range
    CHECK(seen_port(rec, 41051));
    CHECK(seen_port(rec, 41070));
    CHECK_FALSE(seen_port(rec, 41052, std::chrono::milliseconds(50)));
    CHECK_FALSE(seen_port(rec, 41060, std::chrono::milliseconds(50)));
}

TEST_CASE("bad filters are rejected and change nothing", "[filter]")
{
    Recorder rec;
    Filters f;
    f.comms = {"a-name-longer-than-15"};
    CHECK_THROWS_WITH(rec.session.set_filters(f), Catch::Contains("1 to 15 bytes"));
    f = Filters{};
    f.families = {17};
    CHECK_THROWS_WITH(rec.session.set_filters(f), Catch::Contains("AF_INET (2)"));
    f = Filters{};
    f.ports = {{10, 5}};
    CHECK_THROWS_WITH(rec.session.set_filters(f), Catch::Contains("is empty"));
    f = Filters{};
    f.ports.resize(17, PortRange{1, 2});
    CHECK_THROWS_WITH(rec.session.set_filters(f), Catch::Contains("at most 16"));
    // The session still reports with its old filters.
    udp_connect(41081);
    CHECK(seen_port(rec, 41081));
}

namespace {

// Unique to this test process, so no other process's flooder shares it.
const std::string &flood_comm()
{
    static const std::string comm = "csflood-" + std::to_string(::getpid() % 100000);
    return comm;
}

// Flood processes wait on a pipe until the Session watches them, then make
// `per_child` UDP connects as fast as they can.
struct Flood {
    std::vector<pid_t> pids;
    int go[2];

    Flood(int children, long per_child)
    {
        flood_comm(); // named by the test process, before the fork
        REQUIRE(::pipe(go) == 0);
        for (int i = 0; i < children; ++i) {
            pid_t pid = ::fork();
            if (pid == 0) {
                char c;
                ::close(go[1]);
                // EOF on the pipe is the start signal.
                if (::read(go[0], &c, 1) < 0)
                    ::_exit(1);
                ::prctl(PR_SET_NAME, flood_comm().c_str());
                for (long n = 0; n < per_child; ++n)
                    udp_connect(static_cast<std::uint16_t>(42000 + n % 1000));
                ::_exit(0);
            }
            pids.push_back(pid);
        }
        ::close(go[0]);
    }
    void start() { ::close(go[1]); }
    bool running()
    {
        for (auto &pid : pids) {
            if (pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == pid)
                pid = -pid;
        }
        for (auto pid : pids)
            if (pid > 0)
                return true;
        return false;
    }
};

void check_identity(int children, long per_child)
{
    Flood flood(children, per_child);
    Options o = testing::test_options();
    o.ring_size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); // the smallest ring
    o.dns.enabled = false;
    for (auto pid : flood.pids)
        o.filters.pids.push_back(static_cast<std::uint32_t>(pid));
    // pid and comm: a pid reused by another process after a flooder exits must not count.
    o.filters.comms = {flood_comm()};
    std::uint64_t delivered = 0;
    std::map<std::string, std::uint64_t> by_process;
    o.on_connect = [&](const SecuritySocketConnect &ev) {
        ++delivered;
        ++by_process[std::to_string(ev.process.pid) + "/" + ev.process.comm + "/" + std::to_string(ev.sockfd)];
    };
    Session session(o);
    flood.start();
    // The consumer drains every 2 ms: a one-page ring holds 17 records, fewer
    // than the flooder makes in that time even when slowed (e.g. by ASan),
    // so the ring overflows on every run.
    while (flood.running()) {
        session.consume();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    session.consume();
    auto s = session.stats();
    std::uint64_t produced = static_cast<std::uint64_t>(children) * static_cast<std::uint64_t>(per_child);
    if (delivered + s.lost_ring_connect != static_cast<std::uint64_t>(children) * per_child)
        for (const auto &[who, n] : by_process)
            if (n > 0 && who.find("/3") == std::string::npos)
                WARN(who << ": " << n);
    INFO("delivered " << delivered << " lost " << s.lost_ring_connect << " produced " << produced);
    CHECK(delivered + s.lost_ring_connect == produced);
    CHECK(s.events == delivered);
    CHECK(s.lost_ring_connect > 0); // the test really overflowed the ring
    CHECK(s.decode_errors == 0);
    WARN("accounting: " << children << " flooder(s), " << produced << " connects, " << delivered
                        << " delivered, " << s.lost_ring_connect << " lost");
}

} // namespace

TEST_CASE("accounting identity with one flooding process and a one-page ring", "[loss]")
{
    check_identity(1, 100000);
}

TEST_CASE("accounting identity with two flooding processes", "[loss]")
{
    check_identity(2, 60000);
}
