// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Cgroups the tests make in the cgroup v2 hierarchy, and children run in them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <sys/types.h>

namespace testing {

// A top-level cgroup of the test's own below the cgroup v2 mount, under
// which it makes the cgroups it needs; when it goes (also when a check
// failed), every cgroup below it is removed, innermost first, and then
// itself. Name it "connscope-test..."; the host's slices stay untouched.
class ScratchCgroups {
public:
    // name: one path component, "connscope-test-1234.slice".
    explicit ScratchCgroups(const std::string &name);
    ~ScratchCgroups();
    ScratchCgroups(const ScratchCgroups &) = delete;
    ScratchCgroups &operator=(const ScratchCgroups &) = delete;

    // Whether the top exists; error() says why not (or why make() failed).
    bool ok() const { return error_.empty(); }
    const std::string &error() const { return error_; }
    const std::string &path() const { return path_; } // absolute

    // Makes rel ("/docker/<id>") below the top with the parents it lacks;
    // returns its absolute path, or "" (error() says why).
    std::string make(const std::string &rel);

private:
    std::string path_;
    std::string error_;
};

// Moves a process into the cgroup at path (cgroup.procs); false with errno
// set when refused.
bool enter_cgroup(const std::string &path, pid_t pid);

// Forks a child, moves it into the cgroup at path, and only then runs body in
// it; the child exits 0 after body. Returns its pid, or -1 (errno set, the
// child killed and reaped) when the move failed. Reap it before the cgroup goes.
pid_t child_in_cgroup(const std::string &path, const std::function<void()> &body);

} // namespace testing
