// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The container case of issue 13, for real: an agent process in a cgroup of
// its own, with its own cgroup and mount namespaces and a fresh cgroup2 mount
// (so its cgroup2 mount shows only its subtree, as a container's does), runs
// a Session. The test process stays in the host's cgroup and namespaces and
// resolves a name through dnsmasq and connects. The agent must
//  - with the host's PIDs shared (the host's /proc, as hostPID gives),
//    attach to the host's root through /proc/1/root and see that connect
//    with its DNS names (where this test process may follow /proc/1/root
//    at all: a sandbox whose PID 1 is closed to root skips it);
//  - without a way to PID 1's root (no CAP_SYS_PTRACE), refuse with
//    Errc::cgroup_subtree and a message naming the scope and the remedies;
//  - with cgroup_root set to its own mount, watch only its subtree.
#include <catch2/catch.hpp>

#include "support/dnsmasq.hpp"
#include "support/files.hpp"
#include "support/harness.hpp"
#include "support/process.hpp"
#include "support/resolver.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <sstream>
#include <string>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace connscope;

namespace {

struct Plan {
    bool drop_ptrace = false;  // the agent loses CAP_SYS_PTRACE: /proc/1/root is closed to it
    bool on_purpose = false;   // cgroup_root = its own cgroup2 mount
    std::uint16_t inside_port = 0; // an agent's child connects here when told ('c')
};

void say(int fd, const std::string &line) { testing::write_all(fd, line + "\n"); }

// The container: its own cgroup (already joined), cgroup and mount
// namespaces, and a cgroup2 mount that shows only that cgroup.
std::string become_container(const std::string &mount)
{
    if (std::string why = testing::leave_cgroup2_mounts(CLONE_NEWCGROUP); !why.empty())
        return why;
    if (::mount("none", mount.c_str(), "cgroup2", 0, nullptr) != 0)
        return "mount cgroup2 on " + mount + ": " + std::strerror(errno);
    return {};
}

[[noreturn]] void agent(const Plan &plan, const std::string &cgroup_dir, const std::string &mount, int out, int ctl)
{
    testing::write_all(::open((cgroup_dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC), "0");
    std::string why = become_container(mount);
    if (!why.empty()) {
        say(out, "SETUP " + why);
        ::_exit(0);
    }
    if (plan.drop_ptrace && !testing::drop_capability(CAP_SYS_PTRACE)) {
        say(out, std::string("SETUP dropping CAP_SYS_PTRACE: ") + std::strerror(errno));
        ::_exit(0);
    }
    Options o;
    o.backends = testing::backend_under_test();
    o.liveness_interval = std::chrono::milliseconds(0);
    if (plan.on_purpose) {
        o.cgroup_root = mount;
        o.backends = {"cgroup"}; // the one backend whose connect hooks the cgroup scopes
    }
    o.on_connect = [out](const SecuritySocketConnect &ev) {
        if (const auto *in = testing::inet(ev))
            say(out, "CONN " + std::to_string(in->port) + " " + std::to_string(ev.process.pid));
    };
    o.on_tcp_connect = [out](const NetTcpConnect &ev) {
        std::string names;
        for (const auto &n : ev.results)
            names += (names.empty() ? "" : ",") + n;
        say(out, "TCP " + std::to_string(ev.dst_port) + " " + names);
    };
    try {
        Session s(o);
        say(out, "READY " + s.backend().cgroup_root + " | " + s.backend().cgroup_scope + " | dns " + s.backend().dns);
        for (;;) {
            pollfd p{ctl, POLLIN, 0};
            if (::poll(&p, 1, 0) > 0) {
                char c = 0;
                if (::read(ctl, &c, 1) != 1)
                    break; // EOF: the test is done
                if (c == 'c' && ::fork() == 0) {
                    testing::udp_connect(plan.inside_port);
                    ::_exit(0);
                }
            }
            s.poll(std::chrono::milliseconds(20));
        }
    } catch (const Error &e) {
        say(out, "ERR " + std::to_string(e.code().value()) + " " + e.what());
    }
    ::_exit(0);
}

class Container {
public:
    Container(const Plan &plan) : plan_(plan)
    {
        mount_ = testing::cgroup2_mount();
        dir_ = mount_ + "/connscope-scope-" + std::to_string(::getpid());
        REQUIRE((::mkdir(dir_.c_str(), 0755) == 0 || errno == EEXIST));
        int o[2], c[2];
        REQUIRE(::pipe2(o, O_CLOEXEC) == 0);
        REQUIRE(::pipe2(c, O_CLOEXEC) == 0);
        out_ = o[0];
        ctl_ = c[1];
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::close(o[0]);
            ::close(c[1]);
            ::alarm(60);
            agent(plan, dir_, mount_, o[1], c[0]);
        }
        ::close(o[1]);
        ::close(c[0]);
    }
    ~Container()
    {
        ::close(ctl_);
        int st = 0;
        if (pid_ > 0)
            ::waitpid(pid_, &st, 0);
        ::close(out_);
        ::rmdir(dir_.c_str());
    }

    // The next line the agent wrote, or "" after the timeout.
    std::string line(std::chrono::milliseconds timeout = std::chrono::seconds(20))
    {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            auto nl = buf_.find('\n');
            if (nl != std::string::npos) {
                std::string l = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return l;
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                              std::chrono::steady_clock::now());
            if (left.count() <= 0)
                return {};
            pollfd p{out_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
                continue;
            char chunk[4096];
            ssize_t n = ::read(out_, chunk, sizeof(chunk));
            if (n <= 0)
                return {};
            buf_.append(chunk, static_cast<std::size_t>(n));
        }
    }
    // Lines until one starts with prefix (returned), or "" after the timeout; the others go to seen.
    std::string until(const std::string &prefix, std::vector<std::string> &seen,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10))
    {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            std::string l = line(std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now()));
            if (l.empty())
                return {};
            if (l.rfind(prefix, 0) == 0)
                return l;
            seen.push_back(l);
        }
        return {};
    }
    void connect_inside() { testing::write_all(ctl_, "c"); }
    // How the agent ended, if it has: "running", "exit N", "signal N".
    std::string state()
    {
        int st = 0;
        if (::waitpid(pid_, &st, WNOHANG) != pid_)
            return "running";
        pid_ = -1;
        return WIFSIGNALED(st) ? "signal " + std::to_string(WTERMSIG(st)) : "exit " + std::to_string(WEXITSTATUS(st));
    }
    const std::string &mount() const { return mount_; }

private:
    Plan plan_;
    std::string mount_, dir_, buf_;
    int out_ = -1, ctl_ = -1;
    pid_t pid_ = -1;
};

bool cgroup2_usable()
{
    return !testing::cgroup2_mount().empty();
}

} // namespace

TEST_CASE("a container with its own cgroup namespace and the host's PIDs watches the host's root", "[scope][dns]")
{
    SKIP_WITHOUT_CAPABILITY(CAP_SYS_ADMIN, "a cgroup and cgroup, mount namespaces of a container's own");
    if (!cgroup2_usable()) {
        WARN("no cgroup2 mount to make a container's subtree from: skipped");
        return;
    }
    // The host's PIDs are shared (the agent keeps the host's /proc), so
    // /proc/1/root is the host's root wherever this process may follow it.
    const int root = ::open("/proc/1/root/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) {
        WARN("PID 1's root is closed to this test process itself (" << std::strerror(errno)
                                                                    << "), so no agent here can reach it: skipped");
        return;
    }
    ::close(root);
    Plan plan;
    Container c(plan);
    std::string ready = c.line();
    INFO("agent: " << ready);
    REQUIRE(ready.rfind("SETUP", 0) != 0);
    REQUIRE(ready.rfind("READY ", 0) == 0);
    CHECK_THAT(ready, Catch::Contains("READY /proc/1/root" + c.mount() + " | "));
    CHECK_THAT(ready, Catch::Contains("cgroup id 1") && Catch::Contains("through PID 1's mount namespace"));
    CHECK_THAT(ready, Catch::Contains("dns on:"));

    // The host's process: a plain connect, then a name through dnsmasq and a TCP connect.
    const std::uint16_t plain = testing::free_port(SOCK_DGRAM);
    testing::udp_connect(plain);
    std::vector<std::string> seen;
    CHECK_THAT(c.until("CONN " + std::to_string(plain) + " ", seen), Catch::Contains(std::to_string(::getpid())));

    if (!testing::have_dnsmasq()) {
        WARN(testing::kDnsmasq << " is missing: the DNS half skipped");
        return;
    }
    testing::Dnsmasq dns(testing::example_config());
    const std::uint16_t port = testing::free_port(SOCK_STREAM);
    const std::string dir = testing::make_temp_dir();
    const std::string resolv = dir + "/resolv.conf";
    testing::write_file(resolv, testing::resolv_conf_text(dns.address(), false));
    pid_t client = ::fork();
    REQUIRE(client >= 0);
    if (client == 0) {
        testing::ClientReport r;
        r.stage = testing::use_resolver(resolv, r.error);
        if (r.stage == 0)
            testing::resolve_and_connect("www.example.test", AF_INET, port, std::chrono::milliseconds(0), r);
        ::_exit(r.stage);
    }
    int st = 0;
    ::waitpid(client, &st, 0);
    ::unlink(resolv.c_str());
    ::rmdir(dir.c_str());
    INFO("the client's failing stage (0: none): " << WEXITSTATUS(st));
    REQUIRE(WIFEXITED(st));
    REQUIRE(WEXITSTATUS(st) == 0);
    std::string tcp = c.until("TCP " + std::to_string(port) + " ", seen);
    INFO("lines before: " << seen.size() << "; the agent: " << (tcp.empty() ? c.state() : "running"));
    CHECK(tcp == "TCP " + std::to_string(port) + " www.example.test,edge.cdn.test");
}

TEST_CASE("a container whose PID 1 root is closed to it refuses, naming the scope and the remedy", "[scope]")
{
    SKIP_WITHOUT_CAPABILITY(CAP_SYS_ADMIN, "a cgroup and cgroup, mount namespaces of a container's own");
    if (!cgroup2_usable()) {
        WARN("no cgroup2 mount to make a container's subtree from: skipped");
        return;
    }
    Plan plan;
    plan.drop_ptrace = true; // PID 1 holds CAP_SYS_PTRACE, so /proc/1/root needs it
    Container c(plan);
    std::string l = c.line();
    INFO("agent: " << l);
    REQUIRE(l.rfind("SETUP", 0) != 0);
    CHECK_THAT(l, Catch::StartsWith("ERR " + std::to_string(static_cast<int>(Errc::cgroup_subtree)) + " "));
    CHECK_THAT(l, Catch::Contains("reachable only as a subtree: " + c.mount() + " is cgroup id "));
    CHECK_THAT(l, Catch::Contains("cgroup namespace of its own"));
    CHECK_THAT(l, Catch::Contains("/proc/1/root" + c.mount()) && Catch::Contains("CAP_SYS_PTRACE"));
    CHECK_THAT(l, Catch::Contains("--cgroupns=host") && Catch::Contains("--cgroup-root " + c.mount()));
}

TEST_CASE("cgroup_root set to a subtree on purpose watches only that subtree", "[scope]")
{
    SKIP_WITHOUT_CAPABILITY(CAP_SYS_ADMIN, "a cgroup and cgroup, mount namespaces of a container's own");
    if (!cgroup2_usable()) {
        WARN("no cgroup2 mount to make a container's subtree from: skipped");
        return;
    }
    Plan plan;
    plan.on_purpose = true;
    plan.inside_port = testing::free_port(SOCK_DGRAM);
    Container c(plan);
    std::string ready = c.line();
    INFO("agent: " << ready);
    if (ready.rfind("ERR " + std::to_string(static_cast<int>(Errc::backend_unavailable)), 0) == 0) {
        WARN("the cgroup backend is unavailable here: skipped");
        return;
    }
    REQUIRE(ready.rfind("READY " + c.mount() + " | ", 0) == 0);
    CHECK_THAT(ready, Catch::Contains("the subtree at " + c.mount() + " (cgroup id ") &&
                          Catch::Contains("as asked"));
    const std::uint16_t host_port = testing::free_port(SOCK_DGRAM);
    testing::udp_connect(host_port); // outside the subtree: not seen
    c.connect_inside();              // inside, after it: seen
    std::vector<std::string> seen;
    CHECK_FALSE(c.until("CONN " + std::to_string(plan.inside_port) + " ", seen).empty());
    for (const auto &l : seen)
        CHECK_THAT(l, !Catch::StartsWith("CONN " + std::to_string(host_port) + " "));
}

TEST_CASE("with no cgroup2 mounted anywhere (cgroup v1 only), the root is mounted privately", "[scope][v1]")
{
    SKIP_WITHOUT_CAPABILITY(CAP_SYS_ADMIN, "the private mount a cgroup v1-only host needs");
    auto cgroup2_in = [](const char *mountinfo) {
        std::ifstream in(mountinfo);
        std::string line;
        while (std::getline(in, line))
            if (line.find(" - cgroup2 ") != std::string::npos)
                return true;
        return false;
    };
    if (cgroup2_in("/proc/self/mountinfo") || cgroup2_in("/proc/1/mountinfo")) {
        WARN("cgroup2 is mounted here: the cgroup v1-only case runs in the vm suite's cgroup1 boot");
        return;
    }
    testing::Recorder rec(testing::own_options());
    const auto &b = rec.session.backend();
    CHECK(b.cgroup_root == "(private mount)");
    CHECK_THAT(b.cgroup_scope, Catch::Contains("cgroup id 1") && Catch::Contains("mounted privately"));
    CHECK_THAT(b.dns, Catch::StartsWith("on: ") && Catch::Contains("the private cgroup2 mount"));
    // The mount is attached nowhere: no mount table shows it.
    CHECK_FALSE(cgroup2_in("/proc/self/mountinfo"));
    CHECK_FALSE(cgroup2_in("/proc/1/mountinfo"));
    const std::uint16_t port = testing::free_port(SOCK_DGRAM);
    testing::udp_connect(port);
    CHECK(rec.wait_connect(testing::udp_port(port)) != nullptr);
}

TEST_CASE("cgroup_root that is not a cgroup v2 directory is refused, naming it", "[scope]")
{
    Options o = testing::own_options();
    o.cgroup_root = "/nonexistent-connscope-cgroup";
    try {
        Session s(o);
        FAIL("a Session started on " << o.cgroup_root);
    } catch (const Error &e) {
        CHECK(e.code() == std::errc::no_such_file_or_directory);
        CHECK_THAT(e.what(), Catch::Contains("--cgroup-root") && Catch::Contains(o.cgroup_root) &&
                                 Catch::Contains("ENOENT"));
    }
    o.cgroup_root = "/proc";
    try {
        Session s(o);
        FAIL("a Session started on /proc");
    } catch (const Error &e) {
        CHECK(e.code() == std::errc::invalid_argument);
        CHECK_THAT(e.what(), Catch::Contains("/proc is not on cgroup v2"));
    }
}
