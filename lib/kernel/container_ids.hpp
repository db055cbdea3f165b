// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The container id of each cgroup id the ring records carry. A record holds
// the cgroup v2 id the kernel gave the task at connect time: the inode number
// of the cgroup's directory. Which path that is, this learns by walking the
// hierarchy from the directory the Session attached to (no file handles, so
// no CAP_DAC_READ_SEARCH), and process/container_id.cpp reads the path.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <sys/types.h>
#include <unordered_map>

namespace connscope::detail {

class ContainerIds {
public:
    using Clock = std::function<std::chrono::steady_clock::time_point()>;

    // Most cgroups remembered: when a rescan finds the table full, it starts
    // over (a cgroup id is never reused, so nothing in it is ever wrong, only
    // stale once its cgroup is removed; clearing drops those).
    static constexpr std::size_t max_entries = 16384;
    // The least time between two walks: an id not found waits this long for
    // the next, and meanwhile gives "".
    static constexpr std::chrono::milliseconds rescan_interval{250};

    // root_fd: a directory of the cgroup v2 hierarchy (the Session's scope),
    // duplicated here; -1 (no scope): every id gives "".
    explicit ContainerIds(int root_fd, Clock now = {}) noexcept;
    ~ContainerIds();
    ContainerIds(const ContainerIds &) = delete;
    ContainerIds &operator=(const ContainerIds &) = delete;

    // The container id of the cgroup with this id, "" when it is no
    // container's or cannot be found. Valid until the next call. Never throws:
    // any failure gives "".
    const std::string &of(std::uint64_t cgroup_id) noexcept;

    // For tests: cgroups remembered, and walks made.
    std::size_t entries() const { return table_.size(); }
    std::uint64_t scans() const { return scans_; }

private:
    struct Scan;
    void rescan(Scan &scan);
    void visit(int fd, std::string &path, int depth, Scan &scan);
    void remember(std::uint64_t id, const std::string &path, Scan &scan);

    int root_fd_ = -1;
    dev_t dev_ = 0; // the hierarchy's device: the walk does not leave it
    Clock now_;
    std::unordered_map<std::uint64_t, std::string> table_; // cgroup id -> container id ("" for none)
    std::chrono::steady_clock::time_point last_scan_{};
    bool scanned_ = false;
    std::uint64_t scans_ = 0;
};

} // namespace connscope::detail
