// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "support/harness.hpp"

#include <bpf/bpf.h>

#include <algorithm>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace testing {

int wait_child(Recorder &rec, pid_t pid)
{
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) != pid)
        rec.session.poll(std::chrono::milliseconds(10));
    return status;
}

const connscope::InetEndpoint *inet(const connscope::SecuritySocketConnect &ev)
{
    return std::get_if<connscope::InetEndpoint>(&ev.remote_addr);
}

std::string cgroup2_mount()
{
    std::ifstream mounts("/proc/self/mountinfo");
    std::string line;
    while (std::getline(mounts, line))
        if (line.find(" - cgroup2 ") != std::string::npos) {
            std::istringstream fields(line);
            std::string id, parent, dev, root, mountpoint;
            fields >> id >> parent >> dev >> root >> mountpoint;
            return mountpoint;
        }
    return {};
}

bool has_capability(int cap)
{
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("CapEff:", 0) == 0)
            return (std::stoull(line.substr(7), nullptr, 16) >> cap) & 1;
    return false;
}

std::string missing_capabilities()
{
    std::string out;
    for (auto [cap, name] : {std::pair<int, const char *>{39, "CAP_BPF"}, {38, "CAP_PERFMON"}, {12, "CAP_NET_ADMIN"}})
        if (!has_capability(cap))
            out += (out.empty() ? "" : ", ") + std::string(name);
    return out;
}

std::string own_cgroup_path()
{
    std::ifstream in("/proc/self/cgroup");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("0::", 0) == 0)
            return line.substr(3);
    return "/";
}

std::vector<std::uint32_t> own_bpf_program_ids()
{
    std::vector<std::uint32_t> ids;
    DIR *dir = ::opendir("/proc/self/fdinfo");
    if (!dir)
        return ids;
    while (dirent *entry = ::readdir(dir)) {
        std::ifstream info(std::string("/proc/self/fdinfo/") + entry->d_name);
        std::string line;
        while (std::getline(info, line))
            if (line.rfind("prog_id:", 0) == 0)
                ids.push_back(static_cast<std::uint32_t>(std::stoul(line.substr(8))));
    }
    ::closedir(dir);
    return ids;
}

std::vector<std::uint32_t> bpf_program_ids_of(pid_t pid)
{
    std::vector<std::uint32_t> ids;
    std::string dir = "/proc/" + std::to_string(pid) + "/fdinfo";
    DIR *d = ::opendir(dir.c_str());
    if (!d)
        return ids;
    while (dirent *entry = ::readdir(d)) {
        std::ifstream info(dir + "/" + entry->d_name);
        std::string line;
        while (std::getline(info, line))
            if (line.rfind("prog_id:", 0) == 0)
                ids.push_back(static_cast<std::uint32_t>(std::stoul(line.substr(8))));
    }
    ::closedir(d);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
}

bool program_exists(std::uint32_t id)
{
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0)
        return false;
    ::close(fd);
    return true;
}

} // namespace testing
