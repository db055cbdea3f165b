// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// What became of each connect (docs/guide.md, "Outcomes"): one ConnectOutcome
// per connect, after it, joined by connect_id, with the system call's result,
// the LSM verdict, how the TCP handshake ended, the local endpoint and the
// socket cookie. Each case is a real connect: established, refused (no
// listener), timed out (a full accept queue in a namespace of the test's own,
// SYN cookies off), non-blocking, UDP, denied by Landlock (a thread that
// restricts itself), denied by another tool's cgroup program (a deny-all
// cgroup/connect4 on a cgroup of the test's own).
#include <catch2/catch.hpp>

#include "kernel/host.hpp"
#include "support/harness.hpp"
#include "support/listener.hpp"
#include "support/netns.hpp"

#include <bpf/bpf.h>
#include <cerrno>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_restrict_self 446
#endif

using namespace connscope;
using testing::inet;
using testing::Listener;
using testing::own_options;
using testing::Recorder;

namespace {

std::uint32_t this_tid() { return static_cast<std::uint32_t>(::gettid()); }

const std::string &backend_of(const Recorder &rec) { return rec.session.backend().name; }

// The verdict every outcome of an allowed connect must carry on this backend.
LsmVerdict allowed_verdict(const Recorder &rec)
{
    if (backend_of(rec) == "tracepoint" || testing::backend_misses(rec.session, "the LSM verdict"))
        return LsmVerdict::unknown;
    return LsmVerdict::allowed;
}

// Whether every TCP socket's cookie must be known: the cgroup backend gives
// each socket one at connect; elsewhere the handshake's end asks for it,
// which tracing programs may from Linux 5.12.
bool cookie_known(const Recorder &rec)
{
    return backend_of(rec) == "cgroup" || host::kernel_btf_has_name("bpf_get_socket_ptr_cookie");
}

std::uint64_t socket_cookie(int fd)
{
    std::uint64_t cookie = 0;
    socklen_t len = sizeof(cookie);
    REQUIRE(::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) == 0);
    return cookie;
}

InetEndpoint local_endpoint(int fd)
{
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len) == 0);
    InetEndpoint ep;
    if (ss.ss_family == AF_INET) {
        const auto *sin = reinterpret_cast<const sockaddr_in *>(&ss);
        ep.ip = IpAddress::v4(reinterpret_cast<const std::uint8_t *>(&sin->sin_addr));
        ep.port = ntohs(sin->sin_port);
    } else {
        const auto *sin6 = reinterpret_cast<const sockaddr_in6 *>(&ss);
        ep.ip = IpAddress::v6(sin6->sin6_addr.s6_addr);
        ep.port = ntohs(sin6->sin6_port);
    }
    return ep;
}

// The connect event of this thread to port (from socket fd, when given), and
// its outcome, which must come after it.
struct Reported {
    const SecuritySocketConnect *connect = nullptr;
    const ConnectOutcome *outcome = nullptr;
};

Reported reported(Recorder &rec, std::uint16_t port, std::uint32_t tid, int fd = -1)
{
    Reported r;
    r.connect = rec.wait_connect([&](const SecuritySocketConnect &ev) {
        const auto *ep = inet(ev);
        return ep && ep->port == port && ev.process.tid == tid && (fd < 0 || ev.sockfd == fd);
    });
    REQUIRE(r.connect);
    const std::uint64_t id = r.connect->connect_id;
    CHECK(id != 0);
    r.outcome = rec.wait_outcome([id](const ConnectOutcome &o) { return o.connect_id == id; });
    REQUIRE(r.outcome);
    CHECK(r.outcome->sequence > r.connect->sequence);
    CHECK(r.outcome->pid == testing::self_pid());
    CHECK(r.outcome->tid == tid);
    CHECK(r.outcome->via == ConnectVia::connect);
    // Exactly one outcome per connect.
    std::size_t n = 0;
    for (const auto &o : rec.outcomes)
        n += o.connect_id == id;
    CHECK(n == 1);
    return r;
}

void check_local(const ConnectOutcome &o, const InetEndpoint &expected)
{
    REQUIRE(o.local);
    CHECK(o.local->ip.to_string() == expected.ip.to_string());
    CHECK(o.local->port == expected.port);
}

// A TCP connect's outcome that never reached a handshake: only the result.
void check_no_handshake(const ConnectOutcome &o)
{
    CHECK(o.tcp == TcpResult::none);
    CHECK(o.tcp_error == 0);
    CHECK_FALSE(o.local);
}

int tcp_socket(int family, bool nonblocking = false)
{
    int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    REQUIRE(fd >= 0);
    return fd;
}

} // namespace

TEST_CASE("Outcome of an established TCP connect: result, handshake, local endpoint, cookie", "[outcome]")
{
    Recorder rec(own_options());
    const int family = GENERATE(AF_INET, AF_INET6);
    INFO("backend " << backend_of(rec) << ", family " << family);
    Listener l(family);
    const int fd = tcp_socket(family);
    REQUIRE(::connect(fd, l.sa(), l.len) == 0);
    const InetEndpoint local = local_endpoint(fd);
    const std::uint64_t cookie = socket_cookie(fd);
    auto r = reported(rec, l.port, this_tid());
    const ConnectOutcome &o = *r.outcome;
    CHECK(o.result == 0);
    CHECK(o.tcp == TcpResult::established);
    CHECK(o.tcp_error == 0);
    CHECK(o.lsm == allowed_verdict(rec));
    CHECK(outcome_name(o) == "established");
    check_local(o, local);
    if (o.socket_cookie || cookie_known(rec))
        CHECK(o.socket_cookie == cookie);
    CHECK(o.duration_ns > 0);
    CHECK(o.duration_ns < 5'000'000'000ULL);
    CHECK(o.timestamp_ns >= r.connect->process.timestamp_ns);
    // The NetTcpConnect of the same connect carries the same id, between the two.
    const auto *tcp = rec.wait_tcp([&](const NetTcpConnect &t) { return t.connect_id == r.connect->connect_id; });
    REQUIRE(tcp);
    CHECK(tcp->sequence > r.connect->sequence);
    CHECK(tcp->sequence < o.sequence);
    ::close(fd);
}

TEST_CASE("Outcome of a refused TCP connect: ECONNREFUSED, the reset, the port it left from", "[outcome]")
{
    Recorder rec(own_options());
    INFO("backend " << backend_of(rec));
    const std::uint16_t port = testing::free_port(SOCK_STREAM);
    const int fd = tcp_socket(AF_INET);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr *>(&to), sizeof(to)) == -1);
    REQUIRE(errno == ECONNREFUSED);
    auto r = reported(rec, port, this_tid());
    const ConnectOutcome &o = *r.outcome;
    CHECK(o.result == -ECONNREFUSED);
    CHECK(o.tcp == TcpResult::refused);
    CHECK(o.tcp_error == ECONNREFUSED);
    CHECK(o.lsm == allowed_verdict(rec));
    CHECK(outcome_name(o) == "refused");
    REQUIRE(o.local);
    CHECK(o.local->ip.to_string() == "127.0.0.1");
    CHECK(o.local->port != 0); // the SYN's source port
    ::close(fd);
}

TEST_CASE("Outcome of a timed-out TCP connect: a full accept queue that drops the SYN", "[outcome]")
{
    SKIP_WITHOUT_CAPABILITY(CAP_SYS_ADMIN, "a network namespace of the test's own");
    Recorder rec(own_options());
    INFO("backend " << backend_of(rec));
    testing::OwnNetns netns("0");
    netns.set("ipv4/tcp_syncookies", "0");
    netns.set("ipv4/tcp_syn_retries", "1");
    Listener l(AF_INET, 0);
    // The one connect a backlog of 0 queues; every SYN after it is dropped.
    const int filler = tcp_socket(AF_INET);
    REQUIRE(::connect(filler, l.sa(), l.len) == 0);
    const int fd = tcp_socket(AF_INET);
    const unsigned user_timeout_ms = 300; // ends the wait at the first retransmission
    REQUIRE(::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof(user_timeout_ms)) == 0);
    REQUIRE(::connect(fd, l.sa(), l.len) == -1);
    REQUIRE(errno == ETIMEDOUT);
    auto r = reported(rec, l.port, this_tid(), fd);
    const ConnectOutcome &o = *r.outcome;
    CHECK(o.result == -ETIMEDOUT);
    CHECK(o.tcp == TcpResult::timed_out);
    CHECK(o.tcp_error == ETIMEDOUT);
    CHECK(outcome_name(o) == "timed_out");
    CHECK(o.duration_ns >= user_timeout_ms * 1'000'000ULL);
    REQUIRE(o.local);
    CHECK(o.local->port != 0);
    ::close(fd);
    ::close(filler);
}

TEST_CASE("Outcome of a non-blocking TCP connect: EINPROGRESS, then the handshake's end", "[outcome]")
{
    Recorder rec(own_options());
    INFO("backend " << backend_of(rec));
    Listener l(AF_INET);
    const int fd = tcp_socket(AF_INET, true);
    REQUIRE(::connect(fd, l.sa(), l.len) == -1);
    REQUIRE(errno == EINPROGRESS);
    pollfd p{fd, POLLOUT, 0};
    REQUIRE(::poll(&p, 1, 5000) == 1);
    int err = -1;
    socklen_t len = sizeof(err);
    REQUIRE(::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0);
    REQUIRE(err == 0);
    const InetEndpoint local = local_endpoint(fd);
    auto r = reported(rec, l.port, this_tid());
    const ConnectOutcome &o = *r.outcome;
    CHECK(o.result == -EINPROGRESS);
    CHECK(o.tcp == TcpResult::established);
    CHECK(outcome_name(o) == "established");
    check_local(o, local);
    ::close(fd);
}

TEST_CASE("Outcome of a UDP connect: the result and the address the kernel bound", "[outcome]")
{
    Recorder rec(own_options());
    INFO("backend " << backend_of(rec));
    const std::uint16_t port = testing::free_port(SOCK_DGRAM);
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr *>(&to), sizeof(to)) == 0);
    const InetEndpoint local = local_endpoint(fd);
    auto r = reported(rec, port, this_tid());
    const ConnectOutcome &o = *r.outcome;
    CHECK(o.result == 0);
    CHECK(o.tcp == TcpResult::none);
    CHECK(o.lsm == allowed_verdict(rec));
    CHECK(outcome_name(o) == "connected");
    check_local(o, local);
    ::close(fd);
}

namespace {

// landlock_ruleset_attr with the network field (Linux 6.7, ABI 4), which
// Debian 12's headers lack.
struct LandlockRuleset {
    std::uint64_t handled_access_fs;
    std::uint64_t handled_access_net;
};
constexpr std::uint64_t landlock_access_net_connect_tcp = 1ULL << 1;

// In the calling thread only: Landlock then refuses every TCP connect of it.
// Returns 0, or the errno that says why Landlock cannot here.
int landlock_forbid_tcp_connect()
{
    LandlockRuleset attr{0, landlock_access_net_connect_tcp};
    const long fd = ::syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (fd < 0)
        return errno;
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::syscall(SYS_landlock_restrict_self, fd, 0) != 0) {
        const int err = errno;
        ::close(static_cast<int>(fd));
        return err;
    }
    ::close(static_cast<int>(fd));
    return 0;
}

} // namespace

TEST_CASE("A connect Landlock denies is reported, with EACCES and the LSM's verdict", "[outcome][landlock]")
{
    Recorder rec(own_options());
    const std::string backend = backend_of(rec);
    INFO("backend " << backend);
    Listener l(AF_INET);
    int landlock_err = 0, connect_ret = 0, connect_errno = 0;
    std::uint32_t tid = 0;
    // Landlock restricts the thread that asks, and the thread ends with it.
    std::thread restricted([&] {
        tid = this_tid();
        landlock_err = landlock_forbid_tcp_connect();
        if (landlock_err)
            return;
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        connect_ret = ::connect(fd, l.sa(), l.len);
        connect_errno = errno;
        ::close(fd);
    });
    restricted.join();
    if (landlock_err) {
        WARN("Landlock network rules are not available here (" << strerrorname_np(landlock_err)
                                                              << "; Linux 6.7 with landlock in lsm=): not tested");
        return;
    }
    REQUIRE(connect_ret == -1);
    REQUIRE(connect_errno == EACCES);
    auto r = reported(rec, l.port, tid);
    const SecuritySocketConnect &c = *r.connect;
    const ConnectOutcome &o = *r.outcome;
    // The hooks that run after the LSMs never saw it: reported at the return.
    const bool late = backend == "cgroup" || backend == "lsm";
    CHECK(c.late == late);
    CHECK(c.toctou == (late || backend == "tracepoint"));
    CHECK(c.sockfd >= 0);
    CHECK(c.type == SocketType::stream);
    CHECK(o.result == -EACCES);
    check_no_handshake(o);
    if (backend == "tracepoint" || testing::backend_misses(rec.session, "the LSM verdict")) {
        CHECK(o.lsm == LsmVerdict::unknown);
    } else {
        CHECK(o.lsm == LsmVerdict::denied);
        CHECK(o.lsm_error == EACCES);
        CHECK(outcome_name(o) == "denied");
    }
}

TEST_CASE("Without on_outcome, a connect Landlock denies is still reported, and no handshake is followed",
          "[outcome][landlock]")
{
    // Only on_connect: the Session follows no outcome (Options::outcomes
    // applies to a Session that takes them), yet reports refused attempts.
    std::vector<SecuritySocketConnect> connects;
    Options o = own_options();
    o.backends = testing::backend_under_test();
    o.on_connect = [&](const SecuritySocketConnect &ev) { connects.push_back(ev); };
    Session session(o);
    const std::string backend = session.backend().name;
    INFO("backend " << backend << ": " << session.backend().reason);
    const bool late = backend == "cgroup" || backend == "lsm";
    if (late)
        CHECK(session.backend().reason.find("refused connect(2)s from") != std::string::npos);
    CHECK(session.backend().reason.find("outcomes from") == std::string::npos);
    Listener l(AF_INET);
    int landlock_err = 0, allowed_ret = -1, denied_ret = 0, denied_errno = 0;
    std::uint32_t tid = 0;
    std::thread restricted([&] {
        tid = this_tid();
        // First an allowed connect of the same thread: its mark must not
        // hide the refused one that follows.
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        allowed_ret = ::connect(fd, l.sa(), l.len);
        ::close(fd);
        landlock_err = landlock_forbid_tcp_connect();
        if (landlock_err)
            return;
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        denied_ret = ::connect(fd, l.sa(), l.len);
        denied_errno = errno;
        ::close(fd);
    });
    restricted.join();
    REQUIRE(allowed_ret == 0);
    if (landlock_err) {
        WARN("Landlock network rules are not available here (" << strerrorname_np(landlock_err)
                                                              << "; Linux 6.7 with landlock in lsm=): not tested");
        return;
    }
    REQUIRE(denied_ret == -1);
    REQUIRE(denied_errno == EACCES);
    auto attempts = [&] {
        std::vector<const SecuritySocketConnect *> out;
        for (const auto &c : connects) {
            const auto *ep = inet(c);
            if (ep && ep->port == l.port && c.process.tid == tid)
                out.push_back(&c);
        }
        return out;
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (attempts().size() < 2 && std::chrono::steady_clock::now() < deadline)
        session.poll(std::chrono::milliseconds(20));
    const auto seen = attempts();
    REQUIRE(seen.size() == 2);
    CHECK_FALSE(seen[0]->late);
    CHECK(seen[1]->late == late);
    CHECK(seen[1]->toctou == (late || backend == "tracepoint"));
    CHECK(seen[1]->type == SocketType::stream);
    CHECK(seen[1]->sockfd >= 0);
    CHECK(session.stats().outcomes == 0);
    CHECK(session.stats().lost == 0);
}

namespace {

// A cgroup of the test's own with a deny-all cgroup/connect4 program on it,
// as another tool would attach; removed when the object ends.
class DenyingCgroup {
public:
    DenyingCgroup()
    {
        const std::string root = testing::cgroup2_mount();
        REQUIRE(!root.empty());
        path_ = root + "/connscope-deny-" + std::to_string(::getpid());
        REQUIRE((::mkdir(path_.c_str(), 0755) == 0 || errno == EEXIST));
        cgroup_fd_ = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        REQUIRE(cgroup_fd_ >= 0);
        const bpf_insn deny[] = {
            {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0}, // r0 = 0: refuse
            {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
        };
        LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_CGROUP_INET4_CONNECT);
        prog_fd_ = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "deny_connect4", "GPL", deny, 2, &opts);
        REQUIRE(prog_fd_ >= 0);
        REQUIRE(bpf_prog_attach(prog_fd_, cgroup_fd_, BPF_CGROUP_INET4_CONNECT, BPF_F_ALLOW_MULTI) == 0);
    }
    ~DenyingCgroup()
    {
        if (prog_fd_ >= 0) {
            bpf_prog_detach2(prog_fd_, cgroup_fd_, BPF_CGROUP_INET4_CONNECT);
            ::close(prog_fd_);
        }
        if (cgroup_fd_ >= 0)
            ::close(cgroup_fd_);
        ::rmdir(path_.c_str());
    }
    DenyingCgroup(const DenyingCgroup &) = delete;
    DenyingCgroup &operator=(const DenyingCgroup &) = delete;
    const std::string &path() const { return path_; }

private:
    std::string path_;
    int cgroup_fd_ = -1;
    int prog_fd_ = -1;
};

} // namespace

TEST_CASE("A connect another tool's cgroup program denies is reported, with EPERM", "[outcome][cgroup-deny]")
{
    SKIP_WITHOUT_CAPABILITY(CAP_DAC_OVERRIDE, "a cgroup of the test's own, and moving a process into it");
    if (testing::cgroup2_mount().empty()) {
        WARN("no cgroup v2 hierarchy is mounted: not tested");
        return;
    }
    Recorder rec(own_options());
    const std::string backend = backend_of(rec);
    INFO("backend " << backend);
    Listener l(AF_INET);
    DenyingCgroup cgroup;
    int go[2];
    REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        char byte;
        if (::read(go[0], &byte, 1) != 1)
            ::_exit(100);
        // Into the denying cgroup, then the connect it refuses.
        const int procs = ::open((cgroup.path() + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
        if (procs < 0 || ::write(procs, "0", 1) != 1)
            ::_exit(101);
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const int rc = ::connect(fd, l.sa(), l.len);
        ::_exit(rc == -1 ? errno : 0);
    }
    Filters f;
    f.exclude_self = false;
    f.pids = {testing::self_pid(), static_cast<std::uint32_t>(child)};
    rec.session.set_filters(f);
    REQUIRE(::write(go[1], "g", 1) == 1);
    const int status = testing::wait_child(rec, child);
    ::close(go[0]);
    ::close(go[1]);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == EPERM);
    const auto *c = rec.wait_connect([&](const SecuritySocketConnect &ev) {
        const auto *ep = inet(ev);
        return ep && ep->port == l.port && ev.process.pid == static_cast<std::uint32_t>(child);
    });
    REQUIRE(c);
    CHECK_FALSE(c->late);
    const std::uint64_t id = c->connect_id;
    const auto *o = rec.wait_outcome([id](const ConnectOutcome &ev) { return ev.connect_id == id; });
    REQUIRE(o);
    CHECK(o->pid == static_cast<std::uint32_t>(child));
    CHECK(o->result == -EPERM);
    check_no_handshake(*o);
    // The LSMs allowed it; the cgroup program, which runs after them, refused.
    CHECK(o->lsm == allowed_verdict(rec));
    CHECK(outcome_name(*o) == "failed");
}
