// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "container_id.hpp"

#include <vector>

namespace connscope::detail {
namespace {

bool is_container_id(std::string_view s)
{
    if (s.size() != container_id_length)
        return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

// A cgroup named <prefix><id><suffix>. The systemd driver makes a .scope
// unit; cgroupfs uses the bare name. A monitor's name (crio-conmon-<id>,
// libpod-conmon-<id>) leaves "conmon-<id>" after the prefix, which is no id.
struct NamedLayout {
    std::string_view prefix;
    std::string_view suffix;
};
constexpr NamedLayout named_layouts[] = {
    {"docker-", ".scope"},         // Docker, systemd driver
    {"cri-containerd-", ".scope"}, // containerd's CRI plugin, systemd driver
    {"crio-", ".scope"},           // CRI-O, systemd driver
    {"crio-", ""},                 // CRI-O, cgroupfs
    {"libpod-", ".scope"},         // Podman, systemd driver (system and rootless)
    {"libpod-", ""},               // Podman, cgroupfs (libpod_parent/libpod-<id>)
};

// A cgroup named by the bare id, which only its parents tell from any other
// 64-hex name: the ancestors' names, innermost first; "pod*" matches "pod"
// and a pod uid.
struct BareLayout {
    std::vector<std::string_view> ancestors;
};
const BareLayout bare_layouts[] = {
    {{"docker"}},                           // Docker, cgroupfs
    {{"pod*", "kubepods"}},                 // Kubernetes, cgroupfs: a Guaranteed pod
    {{"pod*", "burstable", "kubepods"}},    // ... Burstable
    {{"pod*", "besteffort", "kubepods"}},   // ... BestEffort
};

bool name_matches(std::string_view name, std::string_view pattern)
{
    if (!pattern.empty() && pattern.back() == '*') {
        pattern.remove_suffix(1);
        return name.size() > pattern.size() && name.compare(0, pattern.size(), pattern) == 0;
    }
    return name == pattern;
}

std::string_view named_id(std::string_view name)
{
    for (const NamedLayout &l : named_layouts) {
        if (name.size() != l.prefix.size() + container_id_length + l.suffix.size() ||
            name.compare(0, l.prefix.size(), l.prefix) != 0 ||
            name.compare(name.size() - l.suffix.size(), l.suffix.size(), l.suffix) != 0)
            continue;
        const std::string_view id = name.substr(l.prefix.size(), container_id_length);
        if (is_container_id(id))
            return id;
    }
    return {};
}

// parts[i] is a bare id: whether its ancestors are those of a layout.
bool bare_id_placed(const std::vector<std::string_view> &parts, std::size_t i)
{
    for (const BareLayout &l : bare_layouts) {
        if (l.ancestors.size() > i)
            continue;
        bool all = true;
        for (std::size_t k = 0; k < l.ancestors.size() && all; ++k)
            all = name_matches(parts[i - 1 - k], l.ancestors[k]);
        if (all)
            return true;
    }
    return false;
}

} // namespace

std::string container_id_of_cgroup_path(std::string_view path)
{
    std::vector<std::string_view> parts;
    while (!path.empty()) {
        const std::size_t slash = path.find('/');
        const std::string_view part = path.substr(0, slash);
        if (!part.empty())
            parts.push_back(part);
        if (slash == std::string_view::npos)
            break;
        path.remove_prefix(slash + 1);
    }
    // Innermost first: a cgroup below a container's is that container's, and
    // a container nested in another (Docker in Docker) is the inner one.
    for (std::size_t i = parts.size(); i-- > 0;) {
        const std::string_view id = named_id(parts[i]);
        if (!id.empty())
            return std::string(id);
        if (is_container_id(parts[i]) && bare_id_placed(parts, i))
            return std::string(parts[i]);
    }
    return {};
}

} // namespace connscope::detail
