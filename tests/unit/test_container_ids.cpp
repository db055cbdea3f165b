// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The cgroup id -> container id table over a directory tree shaped like a
// cgroup hierarchy (any file system: a cgroup id is its directory's inode
// number), with a clock the test moves: the rescan rate limit, the memory of
// ids not found, symlinks and files left alone, and the bound.
#include <catch2/catch.hpp>

#include "kernel/container_ids.hpp"

#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using connscope::detail::ContainerIds;

namespace {

const std::string id_a = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string id_b = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
const std::string id_c = "00000000000000000000000000000000000000000000000000000000000000cc";

// A scratch tree under $TMPDIR, removed with everything in it.
struct Tree {
    std::string root;
    int fd = -1;
    Tree()
    {
        // tmpfs where there is one: the bound's case makes 16k directories.
        const char *tmp = std::getenv("TMPDIR");
        struct stat shm {};
        const std::string base = tmp && *tmp ? tmp : ::stat("/dev/shm", &shm) == 0 && S_ISDIR(shm.st_mode) &&
                                                             ::access("/dev/shm", W_OK) == 0
                                                         ? "/dev/shm"
                                                         : "/tmp";
        std::string pattern = base + "/connscope-unit-XXXXXX";
        std::vector<char> buf(pattern.begin(), pattern.end());
        buf.push_back('\0');
        REQUIRE(::mkdtemp(buf.data()) != nullptr);
        root = buf.data();
        fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        REQUIRE(fd >= 0);
    }
    ~Tree()
    {
        ::close(fd);
        std::string cmd = "rm -rf '" + root + "'";
        (void)std::system(cmd.c_str());
    }
    std::uint64_t mkdirs(const std::string &rel)
    {
        std::string path = root;
        std::size_t at = 0;
        while (at != std::string::npos) {
            const std::size_t next = rel.find('/', at + 1);
            path = root + rel.substr(0, next);
            ::mkdir(path.c_str(), 0755);
            at = next;
        }
        return inode(rel);
    }
    // 0 (no cgroup's id) when it is missing.
    std::uint64_t inode(const std::string &rel) const
    {
        struct stat st {};
        return ::lstat((root + rel).c_str(), &st) == 0 ? st.st_ino : 0;
    }
};

struct FakeClock {
    std::chrono::steady_clock::time_point now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
    ContainerIds::Clock fn()
    {
        return [this] { return now; };
    }
};

} // namespace

TEST_CASE("container ids of the cgroups a walk finds", "[container]")
{
    Tree t;
    const auto docker = t.mkdirs("/system.slice/docker-" + id_a + ".scope");
    const auto init = t.mkdirs("/system.slice/docker-" + id_a + ".scope/init.scope");
    const auto pod = t.mkdirs("/kubepods/burstable/pod1234/" + id_b);
    const auto conmon = t.mkdirs("/machine.slice/libpod-conmon-" + id_b + ".scope");
    const auto session = t.mkdirs("/user.slice/user-1000.slice/session-3.scope");
    REQUIRE((docker && init && pod && conmon && session));
    FakeClock clock;
    ContainerIds ids(t.fd, clock.fn());

    CHECK(ids.of(docker) == id_a);
    CHECK(ids.scans() == 1);
    // One walk learnt them all.
    CHECK(ids.of(init) == id_a);
    CHECK(ids.of(pod) == id_b);
    CHECK(ids.of(conmon) == "");
    CHECK(ids.of(session) == "");
    CHECK(ids.of(t.inode("")) == "");
    CHECK(ids.scans() == 1);
    CHECK(ids.of(0) == "");
}

TEST_CASE("a cgroup made after a walk is found by the next, at most one per interval", "[container]")
{
    Tree t;
    t.mkdirs("/system.slice");
    FakeClock clock;
    ContainerIds ids(t.fd, clock.fn());
    CHECK(ids.of(t.inode("/system.slice")) == "");
    REQUIRE(ids.scans() == 1);

    const auto fresh = t.mkdirs("/system.slice/docker-" + id_c + ".scope");
    REQUIRE(fresh != 0);
    // Within the interval: no walk, and no id yet.
    clock.now += ContainerIds::rescan_interval - std::chrono::milliseconds(1);
    CHECK(ids.of(fresh) == "");
    CHECK(ids.scans() == 1);
    clock.now += std::chrono::milliseconds(1);
    CHECK(ids.of(fresh) == id_c);
    CHECK(ids.scans() == 2);
    // Remembered: no walk for it again, even once its cgroup is gone.
    ::rmdir((t.root + "/system.slice/docker-" + id_c + ".scope").c_str());
    clock.now += std::chrono::seconds(1);
    CHECK(ids.of(fresh) == id_c);
    CHECK(ids.scans() == 2);

    // An id no complete walk found stays "" without another walk.
    const std::uint64_t unknown = 0x7fffffffffffULL;
    CHECK(ids.of(unknown) == "");
    CHECK(ids.scans() == 3);
    clock.now += std::chrono::seconds(1);
    CHECK(ids.of(unknown) == "");
    CHECK(ids.scans() == 3);
}

TEST_CASE("the walk skips files and symlinks and stays on its file system", "[container]")
{
    Tree outside;
    const auto elsewhere = outside.mkdirs("/docker/" + id_a);
    REQUIRE(elsewhere != 0);
    Tree t;
    t.mkdirs("/system.slice");
    REQUIRE(::symlink(outside.root.c_str(), (t.root + "/system.slice/link").c_str()) == 0);
    const int f = ::open((t.root + "/system.slice/docker-" + id_b + ".scope").c_str(), O_CREAT | O_WRONLY, 0644);
    REQUIRE(f >= 0);
    ::close(f);
    FakeClock clock;
    ContainerIds ids(t.fd, clock.fn());
    const auto file = t.inode("/system.slice/docker-" + id_b + ".scope");
    REQUIRE(file != 0);
    // Through the symlink it would be /system.slice/link/docker/<id_a>.
    CHECK(ids.of(elsewhere) == "");
    CHECK(ids.of(file) == "");
    CHECK(ids.entries() <= 3); // the root, system.slice, and the ids asked for
}

TEST_CASE("without a hierarchy every id is empty", "[container]")
{
    ContainerIds none(-1);
    CHECK(none.of(1) == "");
    CHECK(none.scans() == 0);
}

TEST_CASE("the table is bounded, and starts over when full", "[container]")
{
    Tree t;
    std::vector<std::uint64_t> dirs;
    for (std::size_t i = 0; i < ContainerIds::max_entries + 100; ++i)
        dirs.push_back(t.mkdirs("/docker/" + std::to_string(i)));
    const auto last = t.mkdirs("/docker/" + id_a);
    REQUIRE(last != 0);
    REQUIRE(dirs.back() != 0);
    FakeClock clock;
    ContainerIds ids(t.fd, clock.fn());
    // Whatever the walk order, the id asked for is found and kept.
    CHECK(ids.of(last) == id_a);
    CHECK(ids.entries() == ContainerIds::max_entries);
    CHECK(ids.of(last) == id_a);
    CHECK(ids.scans() == 1);
    // Some directory did not fit: asking for it clears the table and walks again.
    std::uint64_t missed = 0;
    bool all_empty = true;
    for (auto d : dirs) {
        const auto before = ids.scans();
        clock.now += ContainerIds::rescan_interval;
        all_empty = all_empty && ids.of(d).empty();
        if (ids.scans() != before) {
            missed = d;
            break;
        }
    }
    CHECK(all_empty);
    CHECK(missed != 0);
    CHECK(ids.scans() == 2);
    CHECK(ids.entries() <= ContainerIds::max_entries);
}
