// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "filters.hpp"

#include <connscope/error.hpp>

#include "connscope_connect.skel.h"
#include "cgroup_root.hpp"
#include "error_impl.hpp"
#include "wire.h"

#include <array>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace connscope::detail {
namespace {

template <typename T>
void check_size(const std::vector<T> &set, const char *what)
{
    if (set.size() > CS_FILTER_SET_MAX)
        throw Error(ENOSPC, std::string("filter: ") + std::to_string(set.size()) + " " + what +
                                " given; at most " + std::to_string(CS_FILTER_SET_MAX) + " fit");
}

std::uint64_t cgroup_id(const std::string &path, const CgroupScope *root)
{
    if (!root)
        throw Error(ENOENT, "filter: cgroup '" + path + "': no cgroup v2 root is open");
    // Absolute under the root's path, or else relative to the root (as
    // /proc/PID/cgroup names it): looked up from the root's fd, which also
    // works for a private mount that has no path.
    std::string rel = path;
    if (!root->path.empty() && path.rfind(root->path, 0) == 0 &&
        (path.size() == root->path.size() || path[root->path.size()] == '/'))
        rel = path.substr(root->path.size());
    rel.erase(0, rel.find_first_not_of('/'));
    if (rel.empty())
        rel = ".";
    struct stat st {};
    if (::fstatat(root->fd, rel.c_str(), &st, 0) != 0 || !S_ISDIR(st.st_mode))
        throw Error(ENOENT, "filter: cgroup '" + path + "': " + rel + " is not a cgroup v2 directory below " +
                                root->name() + "; give a path below it");
    return st.st_ino; // a cgroup v2 id is its directory's inode number
}

// Empties a hash map, then fills it with keys (value 1).
template <typename Key>
void replace_set(bpf_map *map, const std::vector<Key> &keys)
{
    int fd = bpf_map__fd(map);
    Key key{}, next{};
    std::vector<Key> old;
    bool first = true;
    while (bpf_map_get_next_key(fd, first ? nullptr : &key, &next) == 0) {
        old.push_back(next);
        key = next;
        first = false;
    }
    for (const auto &k : old)
        bpf_map_delete_elem(fd, &k);
    const __u8 one = 1;
    for (const auto &k : keys)
        if (bpf_map_update_elem(fd, &k, &one, BPF_ANY) != 0)
            throw Error(errno, std::string("filter: updating map ") + bpf_map__name(map) + ": " +
                                   errno_text(errno));
}

} // namespace

void apply_filters(connscope_connect_bpf *skel, const Filters &f, const CgroupScope *cgroup,
                   std::uint16_t canary_port)
{
    cs_filter_config cfg{};
    check_size(f.pids, "pids");
    check_size(f.uids, "uids");
    check_size(f.comms, "comms");
    check_size(f.cgroups, "cgroups");

    std::vector<std::array<char, CS_COMM_LEN>> comms;
    for (const auto &c : f.comms) {
        if (c.empty() || c.size() >= CS_COMM_LEN)
            throw Error(EINVAL, "filter: comm '" + c + "' must be 1 to 15 bytes (the kernel keeps 15)");
        std::array<char, CS_COMM_LEN> key{};
        std::memcpy(key.data(), c.data(), c.size());
        comms.push_back(key);
    }
    std::vector<std::uint64_t> cgroups;
    for (const auto &path : f.cgroups)
        cgroups.push_back(cgroup_id(path, cgroup));
    for (auto family : f.families) {
        if (family != AF_INET && family != AF_INET6 && family != AF_UNIX)
            throw Error(EINVAL, "filter: address family " + std::to_string(family) +
                                    " is not one of AF_INET (2), AF_INET6 (10), AF_UNIX (1)");
        cfg.families |= 1u << family;
    }
    if (f.ports.size() > CS_FILTER_PORT_RANGES_MAX)
        throw Error(ENOSPC, "filter: " + std::to_string(f.ports.size()) + " port ranges given; at most " +
                                std::to_string(CS_FILTER_PORT_RANGES_MAX) + " fit");
    for (std::size_t i = 0; i < f.ports.size(); ++i) {
        if (f.ports[i].first > f.ports[i].last)
            throw Error(EINVAL, "filter: port range " + std::to_string(f.ports[i].first) + "-" +
                                    std::to_string(f.ports[i].last) + " is empty (first > last)");
        cfg.port_ranges[i] = {f.ports[i].first, f.ports[i].last};
    }
    cfg.port_range_count = static_cast<__u32>(f.ports.size());

    cfg.flags = (f.pids.empty() ? 0 : CS_FILTER_PID) | (f.uids.empty() ? 0 : CS_FILTER_UID) |
                (comms.empty() ? 0 : CS_FILTER_COMM) | (cgroups.empty() ? 0 : CS_FILTER_CGROUP) |
                (f.families.empty() ? 0 : CS_FILTER_FAMILY) | (f.ports.empty() ? 0 : CS_FILTER_PORT) |
                (f.exclude_self ? CS_FILTER_EXCLUDE_SELF : 0);
    cfg.self_tgid = static_cast<__u32>(::getpid());
    cfg.canary_port = canary_port;

    replace_set(skel->maps.filter_pids, f.pids);
    replace_set(skel->maps.filter_uids, f.uids);
    replace_set(skel->maps.filter_comms, comms);
    replace_set(skel->maps.filter_cgroups, cgroups);
    __u32 zero = 0;
    if (bpf_map_update_elem(bpf_map__fd(skel->maps.filter_config), &zero, &cfg, BPF_ANY) != 0)
        throw Error(errno, "filter: updating filter_config: " + errno_text(errno));
}

} // namespace connscope::detail
