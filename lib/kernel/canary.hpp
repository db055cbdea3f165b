// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The Session's own connects that prove its hooks fire: a UDP connect (no
// packet leaves) per address family to a loopback port the canary keeps
// bound, so no other program's connects can be taken for one. The filters
// let them through (filters.hpp); the Session swallows them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace connscope {
struct SecuritySocketConnect;
}

namespace connscope::detail {

class Canary {
public:
    // Binds 127.0.0.1:P, and [::1]:P where the host has IPv6 loopback.
    // Throws Error when no loopback port can be had.
    Canary();
    ~Canary();
    Canary(const Canary &) = delete;
    Canary &operator=(const Canary &) = delete;

    std::uint16_t port() const { return port_; }
    // AF_INET, and AF_INET6 where ::1 is configured.
    const std::vector<int> &families() const { return families_; }
    // "IPv4 canary (127.0.0.1:40123)"
    std::string name(int family) const;
    // One connect to the canary port from a fresh socket; 0 or an errno.
    int send(int family) const;

    // The family of a connect record that is a canary of any Session of this
    // process, or 0 when it is not one.
    static int family_of(const SecuritySocketConnect &event);

private:
    std::uint16_t port_ = 0;
    std::vector<int> families_;
    std::vector<int> bound_fds_;
};

} // namespace connscope::detail
