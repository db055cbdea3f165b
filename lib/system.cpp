// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "system.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <unistd.h>
#include <vector>

namespace connscope::sys {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mount_path(const std::string &s)
{
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            int v = (s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0');
            out += static_cast<char>(v);
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::optional<std::string> mount_of_type(const std::string &fstype)
{
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        // id parent major:minor root mountpoint options [optional...] - fstype source super
        auto dash = line.find(" - ");
        if (dash == std::string::npos)
            continue;
        std::istringstream tail(line.substr(dash + 3));
        std::string type;
        tail >> type;
        if (type != fstype)
            continue;
        std::istringstream head(line.substr(0, dash));
        std::string id, parent, dev, root, mountpoint;
        head >> id >> parent >> dev >> root >> mountpoint;
        return unescape_mount_path(mountpoint);
    }
    return std::nullopt;
}

} // namespace

std::optional<std::string> cgroup2_mount() { return mount_of_type("cgroup2"); }

bool kernel_has_btf() { return ::access("/sys/kernel/btf/vmlinux", R_OK) == 0; }

std::string missing_capabilities()
{
    auto status = read_file("/proc/self/status");
    if (!status)
        return {};
    auto pos = status->find("CapEff:");
    if (pos == std::string::npos)
        return {};
    std::uint64_t caps = std::stoull(status->substr(pos + 7), nullptr, 16);
    auto has = [caps](int bit) { return (caps >> bit) & 1; };
    constexpr int cap_net_admin = 12, cap_sys_admin = 21, cap_perfmon = 38, cap_bpf = 39;
    std::vector<std::string> missing;
    if (!has(cap_bpf) && !has(cap_sys_admin))
        missing.emplace_back("CAP_BPF");
    if (!has(cap_perfmon) && !has(cap_sys_admin))
        missing.emplace_back("CAP_PERFMON");
    if (!has(cap_net_admin))
        missing.emplace_back("CAP_NET_ADMIN");
    std::string out;
    for (const auto &m : missing)
        out += (out.empty() ? "" : ", ") + m;
    return out;
}

std::string errno_text(int err)
{
    err = err < 0 ? -err : err;
    // The kernel's internal ENOTSUPP leaks out of bpf(); libc has no name for it.
    if (err == 524)
        return "ENOTSUPP (524): operation not supported by this kernel";
    const char *name = strerrorname_np(err);
    std::string text = name ? name : "E" + std::to_string(err);
    char buf[128];
    return text + ": " + ::strerror_r(err, buf, sizeof(buf));
}

std::int64_t boot_to_realtime_offset_ns()
{
    timespec real{}, boot{};
    ::clock_gettime(CLOCK_REALTIME, &real);
    ::clock_gettime(CLOCK_BOOTTIME, &boot);
    return (static_cast<std::int64_t>(real.tv_sec) - boot.tv_sec) * 1000000000LL +
           (real.tv_nsec - boot.tv_nsec);
}

std::optional<std::string> read_file(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return std::nullopt;
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

} // namespace connscope::sys
