// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "host.hpp"

#include <bpf/libbpf.h>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <sys/utsname.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>
#include <zlib.h>

namespace connscope::host {
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

} // namespace

std::vector<Mount> mounts_of_type(const std::string &fstype, const std::string &mountinfo)
{
    std::vector<Mount> out;
    std::ifstream in(mountinfo);
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
        out.push_back({unescape_mount_path(root), unescape_mount_path(mountpoint)});
    }
    return out;
}

std::optional<std::string> cgroup2_mount()
{
    auto mounts = mounts_of_type("cgroup2");
    if (mounts.empty())
        return std::nullopt;
    return mounts.front().mountpoint;
}

bool kernel_has_btf() { return ::access("/sys/kernel/btf/vmlinux", R_OK) == 0; }

std::string kernel_release()
{
    utsname u{};
    return ::uname(&u) == 0 ? u.release : "unknown";
}

bool kernel_btf_has_name(const std::string &name)
{
    auto btf = read_file("/sys/kernel/btf/vmlinux");
    // A BTF string is NUL-terminated on both sides.
    return btf && btf->find('\0' + name + '\0') != std::string::npos;
}

std::optional<std::uint64_t> bpf_memlock_limit()
{
    // Memory cgroup accounting of BPF memory and bpf_ktime_get_coarse_ns came
    // in the same release (5.11); libbpf tells them apart the same way.
    if (kernel_btf_has_name("BPF_FUNC_ktime_get_coarse_ns"))
        return std::nullopt;
    rlimit lim{};
    if (::getrlimit(RLIMIT_MEMLOCK, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY)
        return std::nullopt;
    return static_cast<std::uint64_t>(lim.rlim_cur);
}

std::optional<std::string> kernel_config(const std::string &option)
{
    std::string text;
    if (gzFile gz = ::gzopen("/proc/config.gz", "rb")) {
        char buf[65536];
        int n;
        while ((n = ::gzread(gz, buf, sizeof(buf))) > 0)
            text.append(buf, static_cast<std::size_t>(n));
        ::gzclose(gz);
    }
    if (text.empty()) {
        auto boot = read_file("/boot/config-" + kernel_release());
        if (!boot)
            return std::nullopt;
        text = std::move(*boot);
    }
    if (text.find("\n# " + option + " is not set") != std::string::npos)
        return std::string();
    auto pos = text.find("\n" + option + "=");
    if (pos == std::string::npos)
        return std::string(); // absent: its menu is off, so it is not set either
    pos += option.size() + 2;
    return text.substr(pos, text.find('\n', pos) - pos);
}

bool kernel_has_kprobes()
{
    for (const char *path : {"/sys/bus/event_source/devices/kprobe/type", "/sys/kernel/tracing/kprobe_events",
                             "/sys/kernel/debug/tracing/kprobe_events"})
        if (::access(path, F_OK) == 0)
            return true;
    return false;
}

bool cgroup_has_task_btf()
{
    // 1: offered; 0: refused ("invalid func" or "unknown func"); < 0: the
    // probe itself failed (no privilege): then let the load say why.
    static const bool has = libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_current_task_btf,
                                                    nullptr) != 0;
    return has;
}

std::uint32_t kernel_thread_size()
{
    constexpr std::uint32_t base = 16384;
    static const std::uint32_t size = [] {
        auto btf = read_file("/sys/kernel/btf/vmlinux");
        // A BTF string is NUL-terminated on both sides.
        static const char kasan_fn[] = "\0kasan_report\0";
        std::uint32_t bytes = base;
        if (btf && btf->find(std::string(kasan_fn, sizeof(kasan_fn) - 1)) != std::string::npos)
            bytes = 2 * base;
#if defined(__aarch64__)
        // arm64's vmapped stacks are at least a page: 64 KiB with 64 KiB pages.
        long page = ::sysconf(_SC_PAGESIZE);
        if (page > 0 && static_cast<std::uint64_t>(page) > bytes)
            bytes = static_cast<std::uint32_t>(page);
#endif
        return bytes;
    }();
    return size;
}

std::uint64_t own_netns_inode()
{
    struct stat st {};
    return ::stat("/proc/self/ns/net", &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

bool tracefs_has_connect_event()
{
    for (const char *base : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
        std::string id = std::string(base) + "/events/syscalls/sys_enter_connect/id";
        if (::access(id.c_str(), R_OK) == 0)
            return true;
    }
    return false;
}

std::optional<std::string> active_lsms()
{
    std::string list;
    if (auto active = read_file("/sys/kernel/security/lsm")) {
        list = *active;
    } else if (auto cmdline = read_file("/proc/cmdline")) {
        auto pos = cmdline->find("lsm=");
        if (pos == std::string::npos || (pos > 0 && (*cmdline)[pos - 1] != ' '))
            return std::nullopt; // the kernel's built-in default list
        list = cmdline->substr(pos + 4, cmdline->find_first_of(" \n", pos) - pos - 4);
    } else {
        return std::nullopt;
    }
    list.erase(list.find_last_not_of(" \n") + 1);
    return list;
}

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

bool has_effective_capability(int bit)
{
    auto status = read_file("/proc/thread-self/status");
    if (!status)
        return false;
    auto pos = status->find("CapEff:");
    if (pos == std::string::npos)
        return false;
    return (std::stoull(status->substr(pos + 7), nullptr, 16) >> bit) & 1;
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

} // namespace connscope::host
