// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Facts about the running host that decide what the Session can do.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace connscope::sys {

// Where the cgroup v2 hierarchy is mounted (hybrid hosts have it at
// /sys/fs/cgroup/unified), from /proc/self/mountinfo; nothing if none is.
std::optional<std::string> cgroup2_mount();

bool kernel_has_btf();

// Which of CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN the process lacks (CAP_SYS_ADMIN
// stands in for the first two, as the kernel allows); empty when none.
std::string missing_capabilities();

// "EPERM: Operation not permitted"
std::string errno_text(int err);

// Unix-epoch ns minus boot-clock ns, now.
std::int64_t boot_to_realtime_offset_ns();

// Reads a whole small file; nothing if it cannot be opened.
std::optional<std::string> read_file(const std::string &path);

} // namespace connscope::sys
