// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Integration tests need root and the real kernel: without them they exit 77
// (skip) and say why, never pass silently.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "harness.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <netinet/in.h>
#include <unistd.h>

namespace testing {

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

std::string own_cgroup_path()
{
    std::ifstream in("/proc/self/cgroup");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("0::", 0) == 0)
            return line.substr(3);
    return "/";
}

bool program_exists(std::uint32_t id)
{
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0)
        return false;
    ::close(fd);
    return true;
}

TcpListener::TcpListener()
{
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&address), sizeof(address)) == 0);
    REQUIRE(::listen(fd, 4) == 0);
    socklen_t len = sizeof(address);
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&address), &len);
    port = ntohs(address.sin_port);
}

TcpListener::~TcpListener() { ::close(fd); }

std::uint16_t free_port(int type)
{
    int fd = ::socket(AF_INET, type, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin));
    socklen_t len = sizeof(sin);
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&sin), &len);
    ::close(fd);
    return ntohs(sin.sin_port);
}

const connscope::InetEndpoint *inet(const connscope::SecuritySocketConnect &ev)
{
    return std::get_if<connscope::InetEndpoint>(&ev.remote_addr);
}

} // namespace testing

namespace {
int quiet_libbpf(enum libbpf_print_level, const char *, va_list) { return 0; }
} // namespace

int main(int argc, char **argv)
{
    if (::geteuid() != 0) {
        std::printf("SKIP: the integration tests load BPF programs and need root\n");
        return 77;
    }
    libbpf_set_print(quiet_libbpf);
    auto backend = testing::backend_under_test();
    try {
        connscope::Options probe;
        probe.backends = backend;
        connscope::Session session(probe);
    } catch (const connscope::Error &e) {
        if (e.code().value() == static_cast<int>(connscope::Errc::backend_unavailable) ||
            e.code().value() == static_cast<int>(connscope::Errc::no_btf)) {
            std::printf("SKIP: backend %s unavailable: %s\n", backend[0].c_str(), e.what());
            return 77;
        }
        std::printf("FAIL: starting a session with backend %s: %s\n", backend[0].c_str(), e.what());
        return 1;
    }
    return Catch::Session().run(argc, argv);
}
