// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Writes connscope::Filters into the BPF filter maps of a loaded backend.
#pragma once

#include <connscope/session.hpp>

#include <cstdint>
#include <optional>
#include <string>

struct connscope_connect_bpf;

namespace connscope::detail {

struct CgroupScope;

// Checks every filter first, then replaces the sets and the config, so a bad
// filter changes nothing. Throws Error (EINVAL, ENOENT, ENOSPC) saying which.
// Connects of this process to loopback port canary_port (0: none) pass every
// filter: they are the Session's own proof that the hook fires.
void apply_filters(connscope_connect_bpf *skel, const Filters &filters,
                   const CgroupScope *cgroup, std::uint16_t canary_port);

} // namespace connscope::detail
