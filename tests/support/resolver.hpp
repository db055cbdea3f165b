// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// A resolving client: a child process, in its own mount namespace with an
// /etc/resolv.conf that names only the test's dnsmasq, resolves a name with
// glibc's getaddrinfo and connects at once to the first result. It reports
// back through a pipe; expect_names checks the NetTcpConnect it made.
#pragma once

#include "support/dnsmasq.hpp"
#include "support/harness.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>
#include <netinet/in.h>

namespace testing {

using Names = std::vector<std::string>;

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
    // Which step failed and why, for INFO().
    std::string why() const;
};

// The body of a resolving client: glibc getaddrinfo for name through the
// resolver /etc/resolv.conf names now, then a TCP connect to the first
// result on port, at once (after delay). Fills r; returns nothing.
void resolve_and_connect(const std::string &name, int family, std::uint16_t port, std::chrono::milliseconds delay,
                         ClientReport &r);

// Gives the calling process its own mount namespace and an /etc/resolv.conf
// naming only nameserver. Returns the failing stage, or 0.
int use_resolver(const std::string &resolv_conf, int &error);

// The /etc/resolv.conf text naming only nameserver (over TCP when use_vc).
std::string resolv_conf_text(const std::string &nameserver, bool use_vc);

// Forks a client: own mount namespace, resolv.conf naming nameserver (over TCP
// when use_vc), getaddrinfo(name, family), TCP connect to port. Waits for it.
Client run_client(Recorder &rec, const std::string &nameserver, const std::string &name, int family,
                  std::uint16_t port, bool use_vc = false,
                  std::chrono::milliseconds delay = std::chrono::milliseconds(0));

// The NetTcpConnect the client made (copied: the recorder's vector may grow).
std::optional<connscope::NetTcpConnect> tcp_of(Recorder &rec, pid_t pid, std::uint16_t port);

// Runs a client and checks its connect is named by exactly `expected`.
void expect_names(Recorder &rec, const Dnsmasq &dns, const std::string &name, int family, const std::string &address,
                  const Names &expected, bool use_vc = false,
                  std::chrono::milliseconds delay = std::chrono::milliseconds(0));

} // namespace testing
