// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "container_ids.hpp"

#include "../process/container_id.hpp"

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

namespace connscope::detail {
namespace {

// Deeper than any runtime nests (a pod slice in a kind node in a container
// is about a dozen); each level holds a directory open while the walk is in it.
constexpr int max_depth = 64;

const std::string empty_id;

} // namespace

struct ContainerIds::Scan {
    std::uint64_t wanted = 0;
    bool found = false;
    bool complete = true; // every directory was read: a missing id is gone for good
    std::string id;
};

ContainerIds::ContainerIds(int root_fd, Clock now) noexcept : now_(std::move(now))
{
    if (!now_)
        now_ = [] { return std::chrono::steady_clock::now(); };
    if (root_fd < 0)
        return;
    root_fd_ = ::fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
    struct stat st {};
    if (root_fd_ >= 0 && ::fstat(root_fd_, &st) == 0 && S_ISDIR(st.st_mode)) {
        dev_ = st.st_dev;
    } else if (root_fd_ >= 0) {
        ::close(root_fd_);
        root_fd_ = -1;
    }
}

ContainerIds::~ContainerIds()
{
    if (root_fd_ >= 0)
        ::close(root_fd_);
}

const std::string &ContainerIds::of(std::uint64_t cgroup_id) noexcept
{
    if (root_fd_ < 0 || cgroup_id == 0)
        return empty_id;
    try {
        if (auto it = table_.find(cgroup_id); it != table_.end())
            return it->second;
        // A cgroup made since the last walk is found by the next one; until
        // then, and for a cgroup already removed, the id is "".
        const auto now = now_();
        if (scanned_ && now - last_scan_ < rescan_interval)
            return empty_id;
        last_scan_ = now;
        scanned_ = true;
        Scan scan;
        scan.wanted = cgroup_id;
        rescan(scan);
        // The record was taken before this walk began, so a complete walk
        // that missed its cgroup means the cgroup is gone (or outside the
        // scope): remember that too, or every later record of it would walk.
        if (scan.found || scan.complete) {
            auto [it, inserted] = table_.try_emplace(cgroup_id, std::move(scan.id));
            return it->second;
        }
    } catch (...) {
        // Out of memory while walking: no id this time, and nothing else breaks.
    }
    return empty_id;
}

void ContainerIds::rescan(Scan &scan)
{
    ++scans_;
    if (table_.size() >= max_entries)
        table_.clear();
    struct stat st {};
    if (::fstat(root_fd_, &st) != 0) {
        scan.complete = false;
        return;
    }
    std::string path;
    remember(static_cast<std::uint64_t>(st.st_ino), "/", scan);
    // visit() takes its fd over; the root's own stays for the next walk.
    const int fd = ::openat(root_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        scan.complete = false;
        return;
    }
    visit(fd, path, 1, scan);
}

void ContainerIds::remember(std::uint64_t id, const std::string &path, Scan &scan)
{
    const bool wanted = id == scan.wanted;
    // One place stays free for the id asked for.
    if (!wanted && (table_.size() + 1 >= max_entries || table_.count(id)))
        return;
    std::string container = container_id_of_cgroup_path(path);
    if (wanted) {
        scan.found = true;
        scan.id = std::move(container);
        return;
    }
    table_.emplace(id, std::move(container));
}

void ContainerIds::visit(int fd, std::string &path, int depth, Scan &scan)
{
    // Closed on every way out: remember() may throw bad_alloc mid-walk.
    const std::unique_ptr<DIR, int (*)(DIR *)> dir(::fdopendir(fd), ::closedir);
    if (!dir) {
        ::close(fd);
        scan.complete = false;
        return;
    }
    for (;;) {
        errno = 0;
        const dirent *entry = ::readdir(dir.get());
        if (!entry) {
            if (errno != 0)
                scan.complete = false;
            break;
        }
        const char *name = entry->d_name;
        if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0)
            continue;
        // cgroupfs gives every entry's type: its files are most of them.
        if (entry->d_type != DT_DIR && entry->d_type != DT_UNKNOWN)
            continue;
        // O_NOFOLLOW: a symlink is not a cgroup, and would lead out of the hierarchy.
        const int child = ::openat(::dirfd(dir.get()), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (child < 0) {
            // Removed meanwhile (its cgroups with it), a file, or a symlink.
            if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
                scan.complete = false;
            continue;
        }
        struct stat st {};
        if (::fstat(child, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_dev != dev_ || depth >= max_depth) {
            if (depth >= max_depth)
                scan.complete = false;
            ::close(child);
            continue;
        }
        const std::size_t len = path.size();
        try {
            path += '/';
            path += name;
            remember(static_cast<std::uint64_t>(st.st_ino), path, scan);
        } catch (...) {
            ::close(child);
            throw;
        }
        visit(child, path, depth + 1, scan);
        path.resize(len);
    }
}

} // namespace connscope::detail
