// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Integration tests need root and the real kernel: without them they exit 77
// (skip) and say why, never pass silently.
#include <catch2/catch.hpp>

#include "support/catch_runner.hpp"

#include "support/harness.hpp"

#include <bpf/libbpf.h>
#include <cstdarg>
#include <cstdio>
#include <unistd.h>

namespace {
int quiet_libbpf(enum libbpf_print_level, const char *, va_list) { return 0; }
} // namespace

int testing::before_tests()
{
    // Root, or a user with the documented capabilities (the caps suite runs
    // it so, with ambient CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN).
    if (::geteuid() != 0 && !testing::missing_capabilities().empty()) {
        std::printf("SKIP: the integration tests load BPF programs and need root, or CAP_BPF, CAP_PERFMON and "
                    "CAP_NET_ADMIN (missing %s)\n",
                    testing::missing_capabilities().c_str());
        return 77;
    }
    libbpf_set_print(quiet_libbpf);
    auto backend = testing::backend_under_test();
    try {
        connscope::Options probe;
        probe.backends = backend;
        connscope::Session session(probe);
    } catch (const connscope::Error &e) {
        if (e.code().value() == static_cast<int>(connscope::Errc::backend_unavailable) ||
            e.code().value() == static_cast<int>(connscope::Errc::no_btf)) {
            std::printf("SKIP: backend %s unavailable: %s\n", backend[0].c_str(), e.what());
            return 77;
        }
        std::printf("FAIL: starting a session with backend %s: %s\n", backend[0].c_str(), e.what());
        return 1;
    }
    return -1;
}
