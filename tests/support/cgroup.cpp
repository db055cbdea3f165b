// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "support/cgroup.hpp"

#include "support/harness.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace testing {
namespace {

// Removes the cgroup at path and every cgroup below it, innermost first
// (rmdir takes a cgroup's files with it, but not its children).
void remove_tree(const std::string &path)
{
    if (DIR *dir = ::opendir(path.c_str())) {
        std::vector<std::string> children;
        while (const dirent *e = ::readdir(dir))
            if (e->d_type == DT_DIR && std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
                children.push_back(path + "/" + e->d_name);
        ::closedir(dir);
        for (const auto &child : children)
            remove_tree(child);
    }
    // A reaped child has left its cgroup on current kernels; give an older
    // one a moment before calling the cgroup busy.
    for (int tries = 0; ::rmdir(path.c_str()) != 0 && errno == EBUSY && tries < 100; ++tries)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

} // namespace

ScratchCgroups::ScratchCgroups(const std::string &name)
{
    const std::string mount = cgroup2_mount();
    if (mount.empty()) {
        error_ = "no cgroup2 mount";
        return;
    }
    path_ = mount + "/" + name;
    if (::mkdir(path_.c_str(), 0755) != 0) {
        // An existing one may be another run's: never take it over.
        error_ = "mkdir " + path_ + ": " + std::strerror(errno);
        path_.clear();
    }
}

ScratchCgroups::~ScratchCgroups()
{
    if (!path_.empty())
        remove_tree(path_);
}

std::string ScratchCgroups::make(const std::string &rel)
{
    if (path_.empty())
        return {};
    std::string path;
    for (std::size_t at = 0; at < rel.size();) {
        std::size_t next = rel.find('/', at + 1);
        if (next == std::string::npos)
            next = rel.size();
        path = path_ + rel.substr(0, next);
        if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
            error_ = "mkdir " + path + ": " + std::strerror(errno);
            return {};
        }
        at = next;
    }
    return path;
}

bool enter_cgroup(const std::string &path, pid_t pid)
{
    const int fd = ::open((path + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    const std::string text = std::to_string(pid);
    const bool done = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    const int err = errno;
    ::close(fd);
    errno = err;
    return done;
}

pid_t child_in_cgroup(const std::string &path, const std::function<void()> &body)
{
    int go[2];
    if (::pipe2(go, O_CLOEXEC) != 0)
        return -1;
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(go[0]);
        ::close(go[1]);
        return -1;
    }
    if (pid == 0) {
        ::close(go[1]);
        char c = 0;
        // One byte: moved; EOF: the parent gave up.
        if (::read(go[0], &c, 1) != 1)
            ::_exit(1);
        body();
        ::_exit(0);
    }
    ::close(go[0]);
    const bool moved = enter_cgroup(path, pid);
    const int err = errno;
    if (moved && ::write(go[1], "m", 1) == 1) {
        ::close(go[1]);
        return pid;
    }
    ::close(go[1]);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    errno = moved ? EPIPE : err;
    return -1;
}

} // namespace testing
