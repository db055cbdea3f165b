// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "support/process.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <linux/capability.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace testing {

std::string read_all(int fd)
{
    std::string out;
    char buf[512];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0)
        out.append(buf, static_cast<std::size_t>(n));
    return out;
}

void write_all(int fd, const std::string &s)
{
    std::size_t off = 0;
    while (off < s.size()) {
        ssize_t n = ::write(fd, s.data() + off, s.size() - off);
        if (n <= 0)
            return;
        off += static_cast<std::size_t>(n);
    }
}

std::string in_child(const std::function<std::string()> &body, int timeout_s)
{
    int p[2];
    REQUIRE(::pipe(p) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(p[0]);
        ::alarm(static_cast<unsigned>(timeout_s));
        std::string out;
        try {
            out = body();
        } catch (const std::exception &e) {
            out = std::string("exception: ") + e.what();
        }
        write_all(p[1], out);
        ::_exit(0);
    }
    ::close(p[1]);
    std::string out = read_all(p[0]);
    ::close(p[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    INFO("child wrote: " << out);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    return out;
}

bool drop_capability(int cap)
{
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
        return false;
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &hdr, data) != 0)
        return false;
    for (auto *set : {&data[cap / 32].effective, &data[cap / 32].permitted, &data[cap / 32].inheritable})
        *set &= ~(1u << (cap % 32));
    return ::syscall(SYS_capset, &hdr, data) == 0;
}

void pin_to_cpu(int cpu)
{
    if (cpu < 0 || cpu >= static_cast<int>(std::thread::hardware_concurrency()))
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ::sched_setaffinity(0, sizeof(set), &set);
}

std::string leave_cgroup2_mounts(int also)
{
    if (::unshare(CLONE_NEWNS | also) != 0)
        return std::string("unshare: ") + std::strerror(errno);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        return std::string("make / private: ") + std::strerror(errno);
    // Stacked mounts show one at a time: a few rounds until none is left.
    for (int round = 0; round < 8; ++round) {
        std::ifstream mi("/proc/self/mountinfo");
        std::string line, target;
        while (std::getline(mi, line))
            if (line.find(" - cgroup2 ") != std::string::npos) {
                std::istringstream f(line);
                std::string id, parent, dev, root;
                f >> id >> parent >> dev >> root >> target;
                break;
            }
        if (target.empty())
            return "";
        if (::umount2(target.c_str(), MNT_DETACH) != 0)
            return "umount " + target + ": " + std::strerror(errno);
    }
    return "cgroup2 mounts remain";
}

} // namespace testing
