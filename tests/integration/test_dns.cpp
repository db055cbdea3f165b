// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// DNS correlation end to end: a real dnsmasq answers, a real glibc resolver
// asks (in a child with its own /etc/resolv.conf), the child connects at once,
// and NetTcpConnect.results must name the connect with the whole CNAME chain.
//
// Every address used here is on loopback (127.A.B.x picked per run, ::1), so
// no packet leaves the machine. Without /usr/sbin/dnsmasq (the VM suite's
// initramfs) the [dns] cases warn and return.
#include <catch2/catch.hpp>

#include "harness.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <new>
#include <optional>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace connscope;
using testing::Recorder;
using Names = std::vector<std::string>;

namespace {

const char *const kDnsmasq = "/usr/sbin/dnsmasq";

bool have_dnsmasq()
{
    return ::access(kDnsmasq, X_OK) == 0;
}

#define SKIP_WITHOUT_DNSMASQ()                                                                   \
    do {                                                                                         \
        if (!have_dnsmasq()) {                                                                   \
            WARN(kDnsmasq << " is missing: [dns] case skipped (install dnsmasq-base)");          \
            return;                                                                              \
        }                                                                                        \
    } while (0)

// This run's own loopback block 127.A.B.0/24 (A in 64..191), so that concurrent
// runs, and other resolvers on the host, never name the addresses we connect to.
std::string run_ip(int last)
{
    static const unsigned pid = static_cast<unsigned>(::getpid());
    return "127." + std::to_string(64 + (pid >> 8) % 128) + "." + std::to_string(pid & 0xff) + "." +
           std::to_string(last);
}

std::string make_temp_dir()
{
    char tmpl[] = "/tmp/connscope-dnstest-XXXXXX";
    if (!::mkdtemp(tmpl))
        throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    return tmpl;
}

void write_file(const std::string &path, const std::string &text)
{
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out.flush())
        throw std::runtime_error("writing " + path);
}

std::string read_file(const std::string &path)
{
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

void pin_to_cpu(int cpu)
{
    if (cpu < 0 || cpu >= static_cast<int>(std::thread::hardware_concurrency()))
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ::sched_setaffinity(0, sizeof(set), &set);
}

// A DNS query for name (RD set, class IN).
std::vector<std::uint8_t> dns_query(std::uint16_t id, const std::string &name, std::uint16_t qtype)
{
    std::vector<std::uint8_t> q{static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id), 0x01, 0x00, 0, 1,
                                0, 0, 0, 0, 0, 0};
    std::size_t start = 0;
    while (start <= name.size()) {
        auto dot = name.find('.', start);
        if (dot == std::string::npos)
            dot = name.size();
        q.push_back(static_cast<std::uint8_t>(dot - start));
        q.insert(q.end(), name.begin() + static_cast<long>(start), name.begin() + static_cast<long>(dot));
        start = dot + 1;
    }
    q.push_back(0);
    q.push_back(static_cast<std::uint8_t>(qtype >> 8));
    q.push_back(static_cast<std::uint8_t>(qtype));
    q.push_back(0);
    q.push_back(1);
    return q;
}

sockaddr_in inet4(const std::string &ip, std::uint16_t port)
{
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    ::inet_pton(AF_INET, ip.c_str(), &sin.sin_addr);
    return sin;
}

// Sends q over UDP (fd: an unconnected UDP socket) and waits for the reply with
// its id; retries on timeout. Returns the reply's length, or -1.
ssize_t udp_exchange(int fd, const sockaddr_in &server, const std::vector<std::uint8_t> &q, std::uint8_t *buf,
                     std::size_t cap, int timeout_ms, int tries)
{
    for (int t = 0; t < tries; ++t) {
        if (::sendto(fd, q.data(), q.size(), 0, reinterpret_cast<const sockaddr *>(&server), sizeof(server)) < 0) {
            if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR)
                return -1;
            ::usleep(1000);
            continue;
        }
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0)
                break;
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
                continue;
            ssize_t n = ::recv(fd, buf, cap, 0);
            if (n >= 2 && buf[0] == q[0] && buf[1] == q[1])
                return n;
        }
    }
    return -1;
}

// dnsmasq serving `config` on one loopback address of this run, port 53, UDP and
// TCP, and nothing else (no upstream, no /etc/hosts). Stopped when destroyed.
class Dnsmasq {
public:
    explicit Dnsmasq(const std::vector<std::string> &config, int cpu = -1) : dir_(make_temp_dir())
    {
        try {
            start(config, cpu);
        } catch (...) {
            stop();
            throw;
        }
    }
    ~Dnsmasq() { stop(); }
    Dnsmasq(const Dnsmasq &) = delete;
    Dnsmasq &operator=(const Dnsmasq &) = delete;

    const std::string &address() const { return address_; }

private:
    // A fresh address per instance: no TIME_WAIT or late packet of one case
    // reaches the next. Skips addresses someone already serves on.
    static std::string next_address()
    {
        static int counter = 0;
        for (int tries = 0; tries < 40; ++tries) {
            std::string ip = run_ip(10 + (counter++ % 40));
            int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
            auto sin = inet4(ip, 53);
            bool free = ::bind(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin)) == 0;
            ::close(fd);
            if (free)
                return ip;
        }
        throw std::runtime_error("no free loopback address for dnsmasq in " + run_ip(0) + "/24");
    }

    void start(const std::vector<std::string> &config, int cpu)
    {
        address_ = next_address();
        std::string conf = dir_ + "/dnsmasq.conf", log = dir_ + "/dnsmasq.log";
        std::string text;
        for (const auto &line : config)
            text += line + "\n";
        text += "host-record=ready.connscope.test,127.0.0.1\n";
        write_file(conf, text);
        std::vector<std::string> args{kDnsmasq,
                                      "--keep-in-foreground",
                                      "--conf-file=" + conf,
                                      "--listen-address=" + address_,
                                      "--bind-interfaces",
                                      "--no-resolv",
                                      "--no-hosts",
                                      "--port=53",
                                      "--pid-file=",
                                      "--user=root",
                                      "--log-facility=-"};
        // dnsmasq runs under a small watcher that stops it when the write end
        // of this pipe closes: in stop(), or when the test dies however it
        // dies (a PR_SET_PDEATHSIG given to dnsmasq was seen not to fire).
        int pipefd[2];
        if (::pipe2(pipefd, O_CLOEXEC) != 0)
            throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
        pid_ = ::fork();
        if (pid_ < 0) {
            ::close(pipefd[0]);
            ::close(pipefd[1]);
            throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
        }
        if (pid_ == 0) {
            ::close(pipefd[1]);
            pid_t server = ::fork();
            if (server == 0) {
                pin_to_cpu(cpu);
                int devnull = ::open("/dev/null", O_RDWR);
                int logfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
                ::dup2(devnull, 0);
                ::dup2(logfd, 1);
                ::dup2(logfd, 2);
                std::vector<char *> argv;
                for (auto &a : args)
                    argv.push_back(a.data());
                argv.push_back(nullptr);
                ::execv(kDnsmasq, argv.data());
                ::_exit(127);
            }
            for (;;) {
                int status = 0;
                if (server < 0 || ::waitpid(server, &status, WNOHANG) == server)
                    ::_exit(100); // dnsmasq ended by itself: a failed start
                pollfd p{pipefd[0], POLLIN, 0};
                if (::poll(&p, 1, 100) > 0)
                    break; // EOF: stop it
            }
            ::kill(server, SIGTERM);
            bool gone = false;
            for (int i = 0; i < 200 && !gone; ++i) {
                gone = ::waitpid(server, nullptr, WNOHANG) == server;
                if (!gone)
                    ::usleep(10'000);
            }
            if (!gone) {
                ::kill(server, SIGKILL);
                ::waitpid(server, nullptr, 0);
            }
            remove_files(); // also when the test died
            ::_exit(0);
        }
        ::close(pipefd[0]);
        stop_fd_ = pipefd[1];
        // Ready when it answers.
        int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        auto server = inet4(address_, 53);
        auto q = dns_query(0x5eed, "ready.connscope.test", 1);
        std::uint8_t buf[512];
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        bool ready = false;
        while (!ready && std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                ::close(fd);
                throw std::runtime_error("dnsmasq exited at start (watcher status " + std::to_string(status) +
                                         "): " + read_file(log));
            }
            ready = udp_exchange(fd, server, q, buf, sizeof(buf), 50, 1) > 0;
        }
        ::close(fd);
        if (!ready)
            throw std::runtime_error("dnsmasq on " + address_ + " did not answer within 10 s: " + read_file(log));
    }

    void stop()
    {
        if (stop_fd_ >= 0)
            ::close(stop_fd_);
        stop_fd_ = -1;
        if (pid_ > 0)
            ::waitpid(pid_, nullptr, 0); // the watcher returns once dnsmasq is gone
        pid_ = -1;
        remove_files();
        dir_.clear();
    }

    void remove_files() const
    {
        if (dir_.empty())
            return;
        ::unlink((dir_ + "/dnsmasq.conf").c_str());
        ::unlink((dir_ + "/dnsmasq.log").c_str());
        ::rmdir(dir_.c_str());
    }

    std::string dir_;
    std::string address_;
    pid_t pid_ = -1; // the watcher
    int stop_fd_ = -1;
};

// What a client child reports through its pipe.
struct ClientReport {
    int stage = 0;          // 0 done; else the step that failed (see run_client)
    int error = 0;          // errno, or the getaddrinfo code at stage 4
    int fd = -1;            // the connected socket
    int connect_errno = 0;  // refused / in progress are fine
    char address[INET6_ADDRSTRLEN] = {};
};

struct Client {
    pid_t pid = -1;
    ClientReport report;
    std::string why() const
    {
        static const char *stages[] = {"done", "unshare", "mount private", "bind resolv.conf", "getaddrinfo",
                                        "socket", "pipe"};
        std::string s = report.stage >= 0 && report.stage < 7 ? stages[report.stage] : "?";
        return "client " + std::to_string(pid) + " stage " + s + ": " +
               (report.stage == 4 ? ::gai_strerror(report.error) : std::strerror(report.error));
    }
};

// The body of a resolving client: glibc getaddrinfo for name through the
// resolver /etc/resolv.conf names now, then a TCP connect to the first
// result on port, at once (after delay). Fills r; returns nothing.
void resolve_and_connect(const std::string &name, int family, std::uint16_t port, std::chrono::milliseconds delay,
                         ClientReport &r)
{
    addrinfo hints{};
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo *res = nullptr;
    int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &res);
    if (rc != 0) {
        r.stage = 4;
        r.error = rc;
        return;
    }
    sockaddr_storage ss{};
    std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
    socklen_t len = res->ai_addrlen;
    ::freeaddrinfo(res);
    if (ss.ss_family == AF_INET) {
        auto *sin = reinterpret_cast<sockaddr_in *>(&ss);
        sin->sin_port = htons(port);
        ::inet_ntop(AF_INET, &sin->sin_addr, r.address, sizeof(r.address));
    } else {
        auto *sin6 = reinterpret_cast<sockaddr_in6 *>(&ss);
        sin6->sin6_port = htons(port);
        ::inet_ntop(AF_INET6, &sin6->sin6_addr, r.address, sizeof(r.address));
    }
    if (delay.count() > 0)
        std::this_thread::sleep_for(delay);
    r.fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (r.fd < 0) {
        r.stage = 5;
        r.error = errno;
        return;
    }
    // Loopback, nobody listens: refused (or in progress) is still a connect.
    if (::connect(r.fd, reinterpret_cast<sockaddr *>(&ss), len) != 0)
        r.connect_errno = errno;
}

// Gives the calling process its own mount namespace and an /etc/resolv.conf
// naming only nameserver. Returns the failing stage, or 0.
int use_resolver(const std::string &resolv_conf, int &error)
{
    if (::unshare(CLONE_NEWNS) != 0)
        return error = errno, 1;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        return error = errno, 2;
    if (::mount(resolv_conf.c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr) != 0)
        return error = errno, 3;
    return 0;
}

std::string resolv_conf_text(const std::string &nameserver, bool use_vc)
{
    return "nameserver " + nameserver + "\noptions timeout:2 attempts:3\n" + (use_vc ? "options use-vc\n" : "");
}

// Waits for a child to end while draining the session: other work on the
// host may fill the ring while the child runs.
int wait_child(Recorder &rec, pid_t pid)
{
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) != pid)
        rec.session.poll(std::chrono::milliseconds(10));
    return status;
}

// Forks a client: own mount namespace, resolv.conf naming nameserver (over TCP
// when use_vc), getaddrinfo(name, family), TCP connect to port. Waits for it.
Client run_client(Recorder &rec, const std::string &nameserver, const std::string &name, int family,
                  std::uint16_t port, bool use_vc = false,
                  std::chrono::milliseconds delay = std::chrono::milliseconds(0))
{
    std::string dir = make_temp_dir();
    std::string resolv = dir + "/resolv.conf";
    write_file(resolv, resolv_conf_text(nameserver, use_vc));
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe");
    Client c;
    c.pid = ::fork();
    if (c.pid == 0) {
        ::close(pipefd[0]);
        ClientReport r;
        r.stage = use_resolver(resolv, r.error);
        if (r.stage == 0)
            resolve_and_connect(name, family, port, delay, r);
        ssize_t w = ::write(pipefd[1], &r, sizeof(r));
        ::_exit(w == sizeof(r) ? 0 : 1);
    }
    ::close(pipefd[1]);
    wait_child(rec, c.pid);
    if (::read(pipefd[0], &c.report, sizeof(c.report)) != sizeof(c.report))
        c.report.stage = 6;
    ::close(pipefd[0]);
    ::unlink(resolv.c_str());
    ::rmdir(dir.c_str());
    return c;
}

// The NetTcpConnect the client made (copied: the recorder's vector may grow).
std::optional<NetTcpConnect> tcp_of(Recorder &rec, pid_t pid, std::uint16_t port)
{
    auto *ev = rec.wait_tcp([&](const NetTcpConnect &t) {
        return t.process.pid == static_cast<std::uint32_t>(pid) && t.dst_port == port;
    });
    if (!ev)
        return std::nullopt;
    return *ev;
}

// Runs a client and checks its connect is named by exactly `expected`.
void expect_names(Recorder &rec, const Dnsmasq &dns, const std::string &name, int family, const std::string &address,
                  const Names &expected, bool use_vc = false,
                  std::chrono::milliseconds delay = std::chrono::milliseconds(0))
{
    auto port = testing::free_port(SOCK_STREAM);
    auto c = run_client(rec, dns.address(), name, family, port, use_vc, delay);
    INFO("resolving " << name << " through " << dns.address() << (use_vc ? " over TCP" : " over UDP"));
    INFO(c.why());
    REQUIRE(c.report.stage == 0);
    CHECK(std::string(c.report.address) == address);
    auto ev = tcp_of(rec, c.pid, port);
    REQUIRE(ev);
    CHECK(ev->dst_ip == address);
    CHECK(ev->sockfd == c.report.fd);
    CHECK(ev->process.ns.net == testing::inode_of("/proc/self/ns/net"));
    CHECK(ev->results == expected);
}

std::vector<std::string> example_config(const char *ttl = "300")
{
    return {"cname=www.example.test,edge.cdn.test", "host-record=edge.cdn.test," + run_ip(88),
            std::string("local-ttl=") + ttl};
}

} // namespace

TEST_CASE("DNS over UDP: the connect is named by the whole CNAME chain", "[dns]")
{
    SKIP_WITHOUT_DNSMASQ();
    Dnsmasq dns(example_config());
    Recorder rec;
    expect_names(rec, dns, "www.example.test", AF_INET, run_ip(88), {"www.example.test", "edge.cdn.test"});
    CHECK(rec.session.stats().dns_messages >= 1);
}

TEST_CASE("DNS over TCP (use-vc): the connect is named by the whole CNAME chain", "[dns][tcp]")
{
    SKIP_WITHOUT_DNSMASQ();
    Dnsmasq dns(example_config());
    Recorder rec;
    expect_names(rec, dns, "www.example.test", AF_INET, run_ip(88), {"www.example.test", "edge.cdn.test"}, true);
    CHECK(rec.session.stats().dns_tcp_dropped == 0);
}

TEST_CASE("DNS: a three-link chain is kept in order", "[dns]")
{
    SKIP_WITHOUT_DNSMASQ();
    Dnsmasq dns({"cname=a.chain.test,b.chain.test", "cname=b.chain.test,c.chain.test",
                 "host-record=c.chain.test," + run_ip(90), "local-ttl=300"});
    Recorder rec;
    SECTION("over UDP")
    {
        expect_names(rec, dns, "a.chain.test", AF_INET, run_ip(90), {"a.chain.test", "b.chain.test", "c.chain.test"});
    }
    SECTION("over TCP")
    {
        expect_names(rec, dns, "a.chain.test", AF_INET, run_ip(90), {"a.chain.test", "b.chain.test", "c.chain.test"},
                     true);
    }
}

TEST_CASE("DNS: an AAAA answer names an IPv6 connect", "[dns][ipv6]")
{
    SKIP_WITHOUT_DNSMASQ();
    // ::1 keeps the connect on this machine; the AAAA answer comes over IPv4 UDP.
    Dnsmasq dns({"cname=www6.example.test,v6.example.test", "host-record=v6.example.test,::1", "local-ttl=300"});
    Recorder rec;
    expect_names(rec, dns, "www6.example.test", AF_INET6, "::1", {"www6.example.test", "v6.example.test"});
}

TEST_CASE("DNS: two names for one address, newest chain first", "[dns]")
{
    SKIP_WITHOUT_DNSMASQ();
    Dnsmasq dns({"host-record=one.multi.test," + run_ip(89), "cname=alias.multi.test,two.multi.test",
                 "host-record=two.multi.test," + run_ip(89), "local-ttl=300"});
    Recorder rec;
    expect_names(rec, dns, "one.multi.test", AF_INET, run_ip(89), {"one.multi.test"});
    expect_names(rec, dns, "alias.multi.test", AF_INET, run_ip(89),
                 {"alias.multi.test", "two.multi.test", "one.multi.test"});
    // And the first name again: its chain moves to the front.
    expect_names(rec, dns, "one.multi.test", AF_INET, run_ip(89),
                 {"one.multi.test", "alias.multi.test", "two.multi.test"});
}

TEST_CASE("DNS: a connect to an address no answer named has no results", "[dns]")
{
    SKIP_WITHOUT_DNSMASQ();
    Dnsmasq dns(example_config());
    Recorder rec;
    expect_names(rec, dns, "www.example.test", AF_INET, run_ip(88), {"www.example.test", "edge.cdn.test"});

    // The test process itself: an unnamed address, then the named one (names
    // belong to the address in this network namespace, not to the resolving process).
    auto connect_to = [](const std::string &ip, std::uint16_t port) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        auto sin = inet4(ip, port);
        ::connect(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin));
        return fd;
    };
    auto port = testing::free_port(SOCK_STREAM);
    int fd1 = connect_to(run_ip(99), port);
    int fd2 = connect_to(run_ip(88), port);
    auto unnamed = tcp_of(rec, ::getpid(), port);
    REQUIRE(unnamed);
    CHECK(unnamed->dst_ip == run_ip(99));
    CHECK(unnamed->results.empty());
    auto *named = rec.wait_tcp([&](const NetTcpConnect &t) { return t.dst_port == port && t.dst_ip == run_ip(88); });
    REQUIRE(named);
    CHECK(named->results == Names{"www.example.test", "edge.cdn.test"});
    ::close(fd1);
    ::close(fd2);
}

TEST_CASE("DNS: TTL 0 answers still name the connect (grace)", "[dns][ttl]")
{
    SKIP_WITHOUT_DNSMASQ();
    Dnsmasq dns(example_config("0"));
    Recorder rec;
    // At once, and 1.5 s after the answer expired.
    expect_names(rec, dns, "www.example.test", AF_INET, run_ip(88), {"www.example.test", "edge.cdn.test"});
    expect_names(rec, dns, "www.example.test", AF_INET, run_ip(88), {"www.example.test", "edge.cdn.test"}, false,
                 std::chrono::milliseconds(1500));
}

namespace {

bool loopback_up()
{
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "lo");
    bool ok = ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP;
    ok = ok && ::ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
    ::close(s);
    return ok;
}

} // namespace

TEST_CASE("DNS: an answer received in another network namespace names nothing here", "[dns][netns]")
{
    SKIP_WITHOUT_DNSMASQ();
    Recorder rec;
    auto port_inside = testing::free_port(SOCK_STREAM);
    std::string resolv_dir = make_temp_dir();
    std::string resolv = resolv_dir + "/resolv.conf";

    // A child in its own network (and mount) namespace runs dnsmasq there,
    // resolves through it and connects there.
    int pipefd[2];
    REQUIRE(::pipe2(pipefd, O_CLOEXEC) == 0);
    pid_t child = ::fork();
    if (child == 0) {
        ::close(pipefd[0]);
        ClientReport r;
        std::uint64_t netns = 0;
        if (::unshare(CLONE_NEWNET) != 0 || !loopback_up()) {
            r.stage = 1;
            r.error = errno;
        } else {
            netns = testing::inode_of("/proc/self/ns/net");
            try {
                Dnsmasq dns(example_config());
                write_file(resolv, resolv_conf_text(dns.address(), false));
                r.stage = use_resolver(resolv, r.error);
                if (r.stage == 0)
                    resolve_and_connect("www.example.test", AF_INET, port_inside, std::chrono::milliseconds(0), r);
            } catch (const std::exception &e) {
                std::fprintf(stderr, "netns child: %s\n", e.what());
                r.stage = 6;
            }
        }
        bool ok = ::write(pipefd[1], &r, sizeof(r)) == sizeof(r) && ::write(pipefd[1], &netns, sizeof(netns)) == 8;
        ::_exit(ok ? 0 : 1);
    }
    ::close(pipefd[1]);
    wait_child(rec, child);
    ClientReport r;
    std::uint64_t netns = 0;
    bool got = ::read(pipefd[0], &r, sizeof(r)) == sizeof(r) && ::read(pipefd[0], &netns, 8) == 8;
    ::close(pipefd[0]);
    ::unlink(resolv.c_str());
    ::rmdir(resolv_dir.c_str());
    REQUIRE(got);
    INFO("netns child stage " << r.stage << " errno/gai " << r.error);
    REQUIRE(r.stage == 0);
    CHECK(std::string(r.address) == run_ip(88));
    REQUIRE(netns != 0);
    REQUIRE(netns != testing::inode_of("/proc/self/ns/net"));

    // Inside that namespace the connect is named...
    auto inside = tcp_of(rec, child, port_inside);
    REQUIRE(inside);
    CHECK(inside->process.ns.net == netns);
    CHECK(inside->results == Names{"www.example.test", "edge.cdn.test"});

    // ...here the same address is not.
    auto port_here = testing::free_port(SOCK_STREAM);
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    auto sin = inet4(run_ip(88), port_here);
    ::connect(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin));
    auto here = tcp_of(rec, ::getpid(), port_here);
    ::close(fd);
    REQUIRE(here);
    CHECK(here->dst_ip == run_ip(88));
    CHECK(here->process.ns.net == testing::inode_of("/proc/self/ns/net"));
    CHECK(here->results.empty());
}

namespace {

// Records what the Session gives it and names every address "fixed.connscope.test".
class RecordingCorrelator : public DnsCorrelator {
public:
    struct Observed {
        std::uint64_t netns;
        std::uint64_t time_ns;
        DnsMessage message;
    };
    struct Lookup {
        std::uint64_t netns;
        IpAddress address;
        std::uint64_t now_ns;
    };
    std::vector<Observed> observed;
    std::vector<Lookup> lookups;

    void observe(std::uint64_t netns, std::uint64_t time_ns, const DnsMessage &answer) override
    {
        observed.push_back({netns, time_ns, answer});
    }
    std::vector<std::string> lookup(std::uint64_t netns, const IpAddress &address, std::uint64_t now_ns) override
    {
        lookups.push_back({netns, address, now_ns});
        return {"fixed.connscope.test"};
    }
};

} // namespace

TEST_CASE("DNS: a custom correlator sees the real answer and names the connect", "[dns][correlator]")
{
    SKIP_WITHOUT_DNSMASQ();
    Dnsmasq dns(example_config());
    auto correlator = std::make_shared<RecordingCorrelator>();
    Options o;
    o.dns.correlator = correlator;
    Recorder rec(o);
    const std::uint64_t host_netns = testing::inode_of("/proc/self/ns/net");

    auto port = testing::free_port(SOCK_STREAM);
    auto c = run_client(rec, dns.address(), "www.example.test", AF_INET, port);
    INFO(c.why());
    REQUIRE(c.report.stage == 0);
    auto ev = tcp_of(rec, c.pid, port);
    REQUIRE(ev);
    CHECK(ev->results == Names{"fixed.connscope.test"});

    // observe() got the answer, from this network namespace, before the connect.
    const RecordingCorrelator::Observed *answer = nullptr;
    for (const auto &o2 : correlator->observed)
        if (o2.message.questions == Names{"www.example.test"})
            answer = &o2;
    REQUIRE(answer);
    CHECK(answer->netns == host_netns);
    CHECK(answer->time_ns <= ev->process.timestamp_ns);
    CHECK(answer->time_ns + 10'000'000'000ULL > ev->process.timestamp_ns);
    CHECK(answer->message.rcode == 0);
    REQUIRE(answer->message.answers.size() == 2);
    CHECK(answer->message.answers[0].type == DnsType::cname);
    CHECK(answer->message.answers[0].name == "www.example.test");
    CHECK(answer->message.answers[0].target == "edge.cdn.test");
    CHECK(answer->message.answers[0].ttl == 300);
    CHECK(answer->message.answers[1].type == DnsType::a);
    CHECK(answer->message.answers[1].name == "edge.cdn.test");
    CHECK(answer->message.answers[1].address.to_string() == run_ip(88));

    // lookup() was asked for that connect's namespace and address.
    bool asked = false;
    for (const auto &l : correlator->lookups)
        if (l.address.to_string() == run_ip(88) && l.netns == host_netns && l.now_ns == ev->process.timestamp_ns)
            asked = true;
    CHECK(asked);
}

namespace {

// Address of stress iteration i: 127.C.x.y, C per run (192..251), one per iteration.
std::string order_ip(unsigned i)
{
    static const unsigned c = 192 + static_cast<unsigned>(::getpid()) % 60;
    return "127." + std::to_string(c) + "." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
}

std::string order_question(unsigned i) { return "c" + std::to_string(i) + ".order.test"; }
std::string order_host(unsigned i) { return "h" + std::to_string(i) + ".order.test"; }

unsigned order_iterations()
{
    const char *e = std::getenv("CONNSCOPE_ORDER_ITERATIONS");
    if (e && *e)
        return static_cast<unsigned>(std::strtoul(e, nullptr, 10));
    return 10000;
}

struct OrderShared {
    std::atomic<int> stop{0};
    std::atomic<unsigned long> flood_connects{0};
    std::atomic<unsigned> done{0};
    std::atomic<unsigned> failures{0};
    char first_failure[200] = {};
};

} // namespace

// Hardening, item 1: the answer a process received is always decoded before
// the connect it makes next, even with another CPU flooding the ring. Every
// iteration uses a fresh name and address, so only the answer just before a
// connect can name it.
TEST_CASE("DNS: every connect right after its answer is named, under a connect flood", "[dns][order]")
{
    SKIP_WITHOUT_DNSMASQ();
    const unsigned n = order_iterations();
    REQUIRE(n >= 1);
    REQUIRE(n <= 64000);
    std::vector<std::string> config{"local-ttl=300"};
    for (unsigned i = 0; i < n; ++i) {
        config.push_back("cname=" + order_question(i) + "," + order_host(i));
        config.push_back("host-record=" + order_host(i) + "," + order_ip(i));
    }
    // dnsmasq and the flood on CPU 1, the client on CPU 0: answer and connect
    // are made on different CPUs.
    Dnsmasq dns(config, 1);

    auto *shared = static_cast<OrderShared *>(
        ::mmap(nullptr, sizeof(OrderShared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    REQUIRE(shared != MAP_FAILED);
    new (shared) OrderShared;

    std::uint32_t client_pid = 0, flood_pid = 0;
    std::uint64_t flood_events = 0;
    std::map<std::string, Names> named; // dst_ip -> results
    std::uint64_t client_events = 0, duplicates = 0;
    const std::uint16_t port = testing::free_port(SOCK_STREAM);
    const std::uint16_t flood_port = testing::free_port(SOCK_DGRAM);

    Options o;
    o.backends = testing::backend_under_test();
    o.ring_size = 64u << 20;
    o.on_connect = [&](const SecuritySocketConnect &ev) {
        if (ev.process.pid == flood_pid)
            ++flood_events;
    };
    o.on_tcp_connect = [&](const NetTcpConnect &ev) {
        if (ev.process.pid != client_pid || ev.dst_port != port)
            return;
        ++client_events;
        if (!named.emplace(ev.dst_ip, ev.results).second)
            ++duplicates;
    };
    Session session(o);

    auto t0 = std::chrono::steady_clock::now();
    pid_t flood = ::fork();
    if (flood == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        pin_to_cpu(1);
        auto sin = inet4("127.0.0.1", flood_port);
        auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        // Bounded: until the client is done, at most 5M connects or 120 s.
        for (unsigned long k = 0; k < 5'000'000 && !shared->stop.load(std::memory_order_relaxed); ++k) {
            int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
            ::connect(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin));
            ::close(fd);
            shared->flood_connects.fetch_add(1, std::memory_order_relaxed);
            if ((k & 1023) == 0 && std::chrono::steady_clock::now() > end)
                break;
        }
        ::_exit(0);
    }
    flood_pid = static_cast<std::uint32_t>(flood);

    pid_t client = ::fork();
    if (client == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        pin_to_cpu(0);
        int ufd = ::socket(AF_INET, SOCK_DGRAM, 0);
        auto server = inet4(dns.address(), 53);
        std::uint8_t buf[1500];
        DnsMessage msg;
        for (unsigned i = 0; i < n; ++i) {
            auto q = dns_query(static_cast<std::uint16_t>(i * 7 + 1), order_question(i), 1);
            errno = 0;
            ssize_t len = udp_exchange(ufd, server, q, buf, sizeof(buf), 1000, 3);
            int err = errno;
            std::string answered;
            auto parsed = DnsParseError::truncated;
            if (len > 0 && (parsed = parse_dns_message(buf, static_cast<std::size_t>(len), msg)) == DnsParseError::ok)
                for (const auto &rr : msg.answers)
                    if (rr.type == DnsType::a)
                        answered = rr.address.to_string();
            if (answered != order_ip(i)) {
                if (shared->failures.fetch_add(1) == 0)
                    std::snprintf(shared->first_failure, sizeof(shared->first_failure),
                                  "query %u for %s: reply length %zd (errno %s), parse %s, rcode %u, address '%s'", i,
                                  order_question(i).c_str(), len, std::strerror(err), to_string(parsed),
                                  len > 3 ? buf[3] & 0xfu : 0u, answered.c_str());
                continue;
            }
            int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            auto dst = inet4(answered, port);
            ::connect(fd, reinterpret_cast<sockaddr *>(&dst), sizeof(dst));
            ::close(fd);
            shared->done.fetch_add(1, std::memory_order_relaxed);
        }
        ::_exit(0);
    }
    client_pid = static_cast<std::uint32_t>(client);

    // Drain while they run; then until every connect arrived (or 10 s more).
    int status = 0;
    bool client_running = true;
    std::chrono::steady_clock::time_point client_end{};
    while (client_running) {
        session.poll(std::chrono::milliseconds(20));
        if (::waitpid(client, &status, WNOHANG) == client) {
            client_running = false;
            client_end = std::chrono::steady_clock::now();
        }
    }
    shared->stop = 1;
    const unsigned done = shared->done.load();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (client_events < done && std::chrono::steady_clock::now() < deadline)
        session.poll(std::chrono::milliseconds(20));
    int flood_status = 0;
    ::waitpid(flood, &flood_status, 0);
    session.poll(std::chrono::milliseconds(50));
    session.consume();
    auto t1 = std::chrono::steady_clock::now();
    auto stats = session.stats();

    unsigned wrong = 0, empty = 0;
    std::string first_wrong;
    for (unsigned i = 0; i < n; ++i) {
        auto it = named.find(order_ip(i));
        Names expected{order_question(i), order_host(i)};
        if (it == named.end())
            continue; // counted below as a missing event
        if (it->second == expected)
            continue;
        ++wrong;
        if (it->second.empty())
            ++empty;
        if (first_wrong.empty()) {
            first_wrong = order_ip(i) + " expected " + expected[0] + "," + expected[1] + " got";
            for (const auto &s : it->second)
                first_wrong += " " + s;
            if (it->second.empty())
                first_wrong += " (nothing)";
        }
    }
    const unsigned long flood_connects = shared->flood_connects.load();
    const unsigned failures = shared->failures.load();
    const std::string first_failure = shared->first_failure;
    shared->~OrderShared();
    ::munmap(shared, sizeof(OrderShared));

    auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
    std::printf("[dns][order] %u iterations: client %lld ms, all events in %lld ms; flood %lu connects (%llu "
                "events); events %llu, tcp %llu, dns %llu; lost %llu (ring connect %llu, ring dns %llu, "
                "truncated %llu, malformed %llu, tcp dropped %llu, decode %llu)\n",
                n, static_cast<long long>(ms(client_end - t0)), static_cast<long long>(ms(t1 - t0)), flood_connects,
                static_cast<unsigned long long>(flood_events), static_cast<unsigned long long>(stats.events),
                static_cast<unsigned long long>(stats.tcp_events),
                static_cast<unsigned long long>(stats.dns_messages), static_cast<unsigned long long>(stats.lost),
                static_cast<unsigned long long>(stats.lost_ring_connect),
                static_cast<unsigned long long>(stats.lost_ring_dns),
                static_cast<unsigned long long>(stats.dns_truncated),
                static_cast<unsigned long long>(stats.dns_malformed),
                static_cast<unsigned long long>(stats.dns_tcp_dropped),
                static_cast<unsigned long long>(stats.decode_errors));
    std::fflush(stdout);

    INFO("first misnamed connect: " << first_wrong);
    CHECK(WIFEXITED(status));
    INFO("first failed query: " << first_failure);
    CHECK(failures == 0);     // every query answered with its address
    CHECK(done == n);
    CHECK(client_events == n); // one NetTcpConnect per iteration...
    CHECK(duplicates == 0);
    CHECK(named.size() == n);
    CHECK(empty == 0);         // ...none decoded before its answer
    CHECK(wrong == 0);         // ...each named by exactly its chain
    CHECK(flood_events > 0);
    // Losses are reported, not failed on: other work on the host shares the
    // ring's producers. A lost answer or connect fails the checks above anyway.
    if (stats.lost != 0)
        WARN("the session lost " << stats.lost << " records or messages (ring connect " << stats.lost_ring_connect
                                 << ", ring dns " << stats.lost_ring_dns << ")");
}
