// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// DNS correlation end to end: a real dnsmasq answers, a real glibc resolver
// asks (in a child with its own /etc/resolv.conf), the child connects at once,
// and NetTcpConnect.results must name the connect with the whole CNAME chain.
// Every address is on loopback; without /usr/sbin/dnsmasq the [dns] cases
// warn and return. The fixtures (dnsmasq, the resolving client) are in tests/support.
#include <catch2/catch.hpp>

#include "support/dnsmasq.hpp"
#include "support/files.hpp"
#include "support/harness.hpp"
#include "support/resolver.hpp"

#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <netinet/in.h>
#include <sched.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

using namespace connscope;
using testing::ClientReport;
using testing::Dnsmasq;
using testing::Names;
using testing::Recorder;
using testing::example_config;
using testing::expect_names;
using testing::inet4;
using testing::loopback_up;
using testing::make_temp_dir;
using testing::resolv_conf_text;
using testing::resolve_and_connect;
using testing::run_client;
using testing::run_ip;
using testing::tcp_of;
using testing::use_resolver;
using testing::wait_child;
using testing::write_file;

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
    CHECK(rec.session.stats().dns_tcp_dropped_bytes == 0);
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

TEST_CASE("DNS on a port of the caller's choice, asked by a bare UDP client, needs nothing more than a Session",
          "[dns][caps]")
{
    // No port 53 and no resolv.conf of its own: runs with only CAP_BPF,
    // CAP_PERFMON and CAP_NET_ADMIN (the caps suite), and as root.
    SKIP_WITHOUT_DNSMASQ_BINARY();
    const std::uint16_t dns_port = testing::free_port(SOCK_DGRAM);
    Dnsmasq dns(example_config(), -1, dns_port);
    Options o = testing::own_options();
    o.dns.ports = {dns_port};
    Recorder rec(o);
    int q = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(q >= 0);
    std::uint8_t buf[1500];
    const auto query = testing::dns_query(0x1313, "www.example.test", 1);
    REQUIRE(testing::udp_exchange(q, inet4(dns.address(), dns_port), query, buf, sizeof(buf), 500, 4) > 0);
    ::close(q);
    const std::uint16_t port = testing::free_port(SOCK_STREAM);
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    REQUIRE(fd >= 0);
    auto dst = inet4(run_ip(88), port);
    ::connect(fd, reinterpret_cast<sockaddr *>(&dst), sizeof(dst)); // refused or in progress: either is a connect
    const NetTcpConnect *ev = nullptr;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!ev && std::chrono::steady_clock::now() < deadline) {
        rec.session.poll(std::chrono::milliseconds(20));
        for (const auto &t : rec.tcp)
            if (t.dst_port == port && t.dst_ip == run_ip(88))
                ev = &t;
    }
    ::close(fd);
    REQUIRE(ev);
    CHECK(ev->results == Names{"www.example.test", "edge.cdn.test"});
    CHECK(rec.session.stats().dns_messages >= 1);
}
