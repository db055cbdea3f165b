// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// A real DNS server for the tests: dnsmasq on a loopback address of this run,
// answering only from the config it is given, and a bare UDP client to ask it.
//
// Every address is on loopback (127.A.B.x picked per run, ::1), so no packet
// leaves the machine. Without /usr/sbin/dnsmasq (the VM suite's initramfs)
// the [dns] cases warn and return.
#pragma once

#include "support/harness.hpp"

#include <cstddef>
#include <linux/capability.h>
#include <cstdint>
#include <string>
#include <sys/types.h>
#include <vector>
#include <netinet/in.h>

namespace testing {

inline constexpr const char *kDnsmasq = "/usr/sbin/dnsmasq";

bool have_dnsmasq();

#define SKIP_WITHOUT_DNSMASQ_BINARY()                                                            \
    do {                                                                                         \
        if (!testing::have_dnsmasq()) {                                                          \
            WARN(testing::kDnsmasq << " is missing: [dns] case skipped (install dnsmasq-base)"); \
            return;                                                                              \
        }                                                                                        \
    } while (0)

// The usual [dns] case: dnsmasq on port 53 (CAP_NET_BIND_SERVICE) and a
// client with its own /etc/resolv.conf in a mount namespace (CAP_SYS_ADMIN),
// more than a Session needs: without them (the caps suite) it warns and returns.
#define SKIP_WITHOUT_DNSMASQ()                                                                   \
    do {                                                                                         \
        SKIP_WITHOUT_DNSMASQ_BINARY();                                                           \
        SKIP_WITHOUT_CAPABILITY(CAP_NET_BIND_SERVICE, "dnsmasq on port 53");                     \
        SKIP_WITHOUT_CAPABILITY(CAP_SYS_ADMIN, "a resolv.conf of the client's own");             \
    } while (0)

// This run's own loopback block 127.A.B.0/24 (A in 64..191), so that concurrent
// runs, and other resolvers on the host, never name the addresses we connect to.
std::string run_ip(int last);

// A DNS query for name (RD set, class IN).
std::vector<std::uint8_t> dns_query(std::uint16_t id, const std::string &name, std::uint16_t qtype);

// Sends q over UDP (fd: an unconnected UDP socket) and waits for the reply with
// its id; retries on timeout. Returns the reply's length, or -1.
ssize_t udp_exchange(int fd, const sockaddr_in &server, const std::vector<std::uint8_t> &q, std::uint8_t *buf,
                     std::size_t cap, int timeout_ms, int tries);

// dnsmasq serving `config` on one loopback address of this run, port 53, UDP and
// TCP, and nothing else (no upstream, no /etc/hosts). Stopped when destroyed.
// cpu >= 0 pins it to that CPU.
class Dnsmasq {
public:
    // port: where it answers (53, or a port >= 1024 a process without
    // CAP_NET_BIND_SERVICE can bind; give the Session that port in DnsOptions::ports).
    explicit Dnsmasq(const std::vector<std::string> &config, int cpu = -1, std::uint16_t port = 53);
    ~Dnsmasq();
    Dnsmasq(const Dnsmasq &) = delete;
    Dnsmasq &operator=(const Dnsmasq &) = delete;

    const std::string &address() const { return address_; }
    std::uint16_t port() const { return port_; }

private:
    static std::string next_address(std::uint16_t port);
    void start(const std::vector<std::string> &config, int cpu);
    void stop();
    void remove_files() const;

    std::string dir_;
    std::string address_;
    std::uint16_t port_ = 53;
    pid_t pid_ = -1; // the watcher
    int stop_fd_ = -1;
};

// The answer most cases ask for: www.example.test CNAME edge.cdn.test, which
// has the address run_ip(88); both with this TTL.
std::vector<std::string> example_config(const char *ttl = "300");

} // namespace testing
