// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The calling thread in a network namespace of its own, for the tests that
// need a sysctl of the namespace (net.ipv4.tcp_fastopen) without touching
// the host's: lo is up, and the thread is back in its old namespace when the
// object ends, also when a REQUIRE throws.
#pragma once

#include "support/loopback.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <string>
#include <unistd.h>

namespace testing {

class OwnNetns {
public:
    // tcp_fastopen: the value for net.ipv4.tcp_fastopen ("1": client bit).
    explicit OwnNetns(const char *tcp_fastopen)
    {
        old_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        REQUIRE(old_ >= 0);
        REQUIRE(::unshare(CLONE_NEWNET) == 0);
        REQUIRE(loopback_up());
        set("ipv4/tcp_fastopen", tcp_fastopen);
    }
    // Sets /proc/sys/net/<name> of this namespace.
    void set(const char *name, const char *value)
    {
        // /proc/sys/net shows the namespace of the task that opens it.
        const std::string path = std::string("/proc/sys/net/") + name;
        int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
        INFO(path);
        REQUIRE(fd >= 0);
        const auto len = static_cast<ssize_t>(std::strlen(value));
        const bool written = ::write(fd, value, static_cast<std::size_t>(len)) == len;
        ::close(fd);
        REQUIRE(written);
    }
    ~OwnNetns()
    {
        ::setns(old_, CLONE_NEWNET);
        ::close(old_);
    }
    OwnNetns(const OwnNetns &) = delete;
    OwnNetns &operator=(const OwnNetns &) = delete;

private:
    int old_ = -1;
};

} // namespace testing
