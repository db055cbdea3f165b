// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Where the cgroup programs (the cgroup backend, the whole DNS capture) are
// attached, and what that covers. A program on a cgroup runs only for the
// processes below it, so the one place that sees everything is the root of
// the v2 hierarchy (cgroup id 1). A process in a cgroup namespace of its own
// (a container) sees a subtree at /sys/fs/cgroup; a cgroup v1-only host has
// the unified hierarchy (every process sits at its root) but no mount of it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace connscope::detail {

struct CgroupScope {
    enum class Kind {
        root,          // the hierarchy's root, cgroup id 1
        subtree,       // a subtree, because the caller asked for it
    };
    Kind kind = Kind::root;
    int fd = -1;              // O_RDONLY directory fd every attach (and re-attach) uses
    std::uint64_t id = 0;     // its cgroup id (its directory's inode number)
    std::string path;         // how it was reached, for messages; "" for a private mount
    bool private_mount = false; // a detached mount of the library's own (no path on the host)
    std::string description;  // one sentence: what is watched, and how it was found

    CgroupScope() = default;
    CgroupScope(const CgroupScope &) = delete;
    CgroupScope &operator=(const CgroupScope &) = delete;
    ~CgroupScope();

    // "/sys/fs/cgroup/unified" or "the private cgroup2 mount", as messages name it.
    std::string name() const;
};

// What finding the root came to: a scope, or why there is none.
struct CgroupScopeResult {
    std::shared_ptr<const CgroupScope> scope;
    // Without a scope: whether cgroup v2 is only reachable as a subtree
    // (refuse: watching would miss the rest silently), or not at all (a
    // cgroup v1-only host where the private mount failed: run without).
    bool subtree_only = false;
    std::string why; // what was found, the cause, and the remedy
};

// requested: Options::cgroup_root ("" = find the root). A requested path that
// is not a cgroup v2 directory throws Error (ENOENT, ENOTDIR, EINVAL).
CgroupScopeResult find_cgroup_scope(const std::string &requested);

} // namespace connscope::detail
