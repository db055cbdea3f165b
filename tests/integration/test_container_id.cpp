// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// ProcessContext::container_id on real connects: children moved into cgroups
// shaped as each runtime names them (inside a connscope-test directory of
// our own, never the host's system.slice or kubepods) connect over loopback,
// and their events must carry that cgroup's id and exactly the container id
// its path names, or "" for a monitor's and a plain cgroup.
#include <catch2/catch.hpp>

#include <linux/capability.h>

#include "support/cgroup.hpp"
#include "support/harness.hpp"
#include "support/loopback.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace connscope;
using testing::Recorder;
using testing::ScratchCgroups;

namespace {

constexpr std::uint16_t first_port = 41210;

// A container id of this run: 64 hex digits, unlike those of another seed.
std::string hex_id(unsigned seed)
{
    std::string out;
    std::uint64_t x = (static_cast<std::uint64_t>(::getpid()) << 20) ^ (0x9e3779b97f4a7c15ULL * (seed + 1));
    while (out.size() < 64) {
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdULL;
        x ^= x >> 29;
        char buf[17];
        std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(x));
        out += buf;
    }
    return out;
}

// This run's own top-level cgroup, where the runtime-shaped ones go.
std::string top_name(const char *suffix = ".slice")
{
    return "connscope-test-" + std::to_string(::getpid()) + suffix;
}

void tcp_connect(std::uint16_t port)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sin = testing::inet4("127.0.0.1", port);
    ::connect(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin));
    ::close(fd);
}

Options options_for(std::uint16_t tcp_port = 0)
{
    Options o = testing::test_options();
    o.filters.ports = {{first_port, first_port + 9}};
    if (tcp_port)
        o.filters.ports.push_back({tcp_port, tcp_port});
    return o;
}

// Runs a child in the cgroup at path that makes a UDP connect to port (and
// a TCP one to tcp_port if given), and returns its connect event, or null.
const SecuritySocketConnect *connect_from(Recorder &rec, const std::string &path, std::uint16_t port,
                                          std::uint16_t tcp_port = 0)
{
    const pid_t pid = testing::child_in_cgroup(path, [port, tcp_port] {
        testing::udp_connect(port);
        if (tcp_port)
            tcp_connect(tcp_port);
    });
    INFO("moving a child into " << path << ": " << std::strerror(errno));
    REQUIRE(pid > 0);
    CHECK(testing::wait_child(rec, pid) == 0);
    return rec.wait_connect(testing::udp_port(port, static_cast<std::uint32_t>(pid)));
}

bool can_make_cgroups()
{
    if (testing::cgroup2_mount().empty()) {
        WARN("no cgroup2 mount to make cgroups in (a cgroup v1-only host): skipped");
        return false;
    }
    if (!testing::has_capability(CAP_DAC_OVERRIDE)) {
        WARN("CAP_DAC_OVERRIDE is missing (making cgroups in the root-owned hierarchy): skipped; the caps suite "
             "runs with only CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN");
        return false;
    }
    return true;
}

} // namespace

TEST_CASE("container_id of each runtime's cgroup layout", "[connect][container]")
{
    if (!can_make_cgroups())
        return;
    struct Case {
        const char *what;
        ScratchCgroups &top;
        std::string rel;
        std::string expected;
    };
    // Made before the Session starts, as a host's containers are.
    ScratchCgroups slice(top_name()), cgroupfs_top(top_name(""));
    REQUIRE(slice.ok());
    REQUIRE(cgroupfs_top.ok());
    const std::string docker = hex_id(1), cgroupfs = hex_id(2), cri = hex_id(3), conmon = hex_id(4),
                      nested = hex_id(5);
    const std::string pod = "kubepods-burstable-pod3f1e2d4c_5b6a_4978_8c9d_0e1f2a3b4c5d.slice";
    const std::vector<Case> cases = {
        {"Docker, systemd driver", slice, "/docker-" + docker + ".scope", docker},
        {"Docker, cgroupfs driver", cgroupfs_top, "/docker/" + cgroupfs, cgroupfs},
        {"containerd CRI in a Kubernetes pod slice", slice,
         "/kubepods-burstable.slice/" + pod + "/cri-containerd-" + cri + ".scope", cri},
        {"CRI-O's monitor", slice, "/crio-conmon-" + conmon + ".scope", ""},
        {"below a container's scope", slice, "/docker-" + nested + ".scope/init.scope", nested},
        {"a plain cgroup", slice, "/plain.scope", ""},
    };
    std::vector<std::string> paths;
    for (const auto &c : cases) {
        paths.push_back(c.top.make(c.rel));
        INFO(c.what << ": " << c.top.error());
        REQUIRE(!paths.back().empty());
    }
    testing::TcpListener listener;
    Recorder rec(options_for(listener.port));
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const Case &c = cases[i];
        const std::string &path = paths[i];
        const std::uint64_t cgroup_id = testing::inode_of(path); // a cgroup id is its directory's inode
        INFO(c.what << ": " << path);
        const bool tcp = i == 0; // NetTcpConnect carries it too
        const auto port = static_cast<std::uint16_t>(first_port + i);
        const SecuritySocketConnect *found = connect_from(rec, path, port, tcp ? listener.port : 0);
        REQUIRE(found != nullptr);
        const SecuritySocketConnect ev = *found; // later polls may move the recorded events
        CHECK(ev.process.cgroup_id == cgroup_id);
        CHECK(ev.process.container_id == c.expected);
        if (!tcp)
            continue;
        const NetTcpConnect *t = rec.wait_tcp([&](const NetTcpConnect &e) {
            return e.process.pid == ev.process.pid && e.dst_port == listener.port;
        });
        REQUIRE(t != nullptr);
        CHECK(t->process.cgroup_id == cgroup_id);
        CHECK(t->process.container_id == c.expected);
        // In the JSON too, right after cgroup_id.
        CHECK_THAT(to_json(ev), Catch::Contains(",\"cgroup_id\":" + std::to_string(cgroup_id) +
                                                ",\"container_id\":\"" + c.expected + "\",\"mnt_ns\":"));
    }
}

TEST_CASE("container_id of a cgroup made after the Session started", "[connect][container]")
{
    if (!can_make_cgroups())
        return;
    ScratchCgroups slice(top_name());
    REQUIRE(slice.ok());
    const std::string plain = slice.make("/plain.scope");
    REQUIRE(!plain.empty());
    Recorder rec(options_for());
    // A first event makes the Session walk the hierarchy as it is now ...
    const SecuritySocketConnect *before = connect_from(rec, plain, first_port);
    REQUIRE(before != nullptr);
    CHECK(before->process.cgroup_id == testing::inode_of(plain));
    CHECK(before->process.container_id == "");

    // ... so a container that starts now is not in what it learnt.
    const std::string id = hex_id(6);
    const std::string late = slice.make("/docker-" + id + ".scope");
    REQUIRE(!late.empty());
    // A miss walks again only once the rate limit allows (250 ms after the
    // last walk); wait it out, so the event below is not decoded within it.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const SecuritySocketConnect *after = connect_from(rec, late, first_port + 1);
    REQUIRE(after != nullptr);
    CHECK(after->process.cgroup_id == testing::inode_of(late));
    CHECK(after->process.container_id == id);
}
