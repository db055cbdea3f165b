// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// A real DNS server for the tests: dnsmasq on a loopback address of this run,
// answering only from the config it is given, and a bare UDP client to ask it.
//
// Every address is on loopback (127.A.B.x picked per run, ::1), so no packet
// leaves the machine. Without /usr/sbin/dnsmasq (the VM suite's initramfs)
// the [dns] cases warn and return.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <sys/types.h>
#include <vector>
#include <netinet/in.h>

namespace testing {

inline constexpr const char *kDnsmasq = "/usr/sbin/dnsmasq";

bool have_dnsmasq();

#define SKIP_WITHOUT_DNSMASQ()                                                                   \
    do {                                                                                         \
        if (!testing::have_dnsmasq()) {                                                          \
            WARN(testing::kDnsmasq << " is missing: [dns] case skipped (install dnsmasq-base)"); \
            return;                                                                              \
        }                                                                                        \
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
    explicit Dnsmasq(const std::vector<std::string> &config, int cpu = -1);
    ~Dnsmasq();
    Dnsmasq(const Dnsmasq &) = delete;
    Dnsmasq &operator=(const Dnsmasq &) = delete;

    const std::string &address() const { return address_; }

private:
    static std::string next_address();
    void start(const std::vector<std::string> &config, int cpu);
    void stop();
    void remove_files() const;

    std::string dir_;
    std::string address_;
    pid_t pid_ = -1; // the watcher
    int stop_fd_ = -1;
};

// The answer most cases ask for: www.example.test CNAME edge.cdn.test, which
// has the address run_ip(88); both with this TTL.
std::vector<std::string> example_config(const char *ttl = "300");

} // namespace testing
