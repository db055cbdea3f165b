// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The child processes tests fork: what they say through a pipe, running a
// body in one, and pinning one to a CPU.
#pragma once

#include <functional>
#include <string>

namespace testing {

// A child's answer over a pipe: everything it wrote until it exited.
std::string read_all(int fd);

void write_all(int fd, const std::string &s);

// Runs body in a child whose stdout-like result goes to a pipe; returns what
// it wrote and requires a clean exit. body must not return into Catch.
std::string in_child(const std::function<std::string()> &body, int timeout_s = 20);

// Keeps the calling process on one CPU; does nothing if there is no such CPU.
void pin_to_cpu(int cpu);

// Drops one capability (CAP_*) from this process's bounding, permitted,
// effective and inheritable sets; false (errno set) when the kernel refuses.
bool drop_capability(int cap);

// Moves this process into new namespaces (CLONE_NEWNS and `also`, e.g.
// CLONE_NEWCGROUP), makes every mount private and detaches each cgroup2 mount
// it sees, as a container's view without the host's hierarchy. "" on success,
// else what failed and why.
std::string leave_cgroup2_mounts(int also = 0);

} // namespace testing
