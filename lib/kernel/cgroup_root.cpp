// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "cgroup_root.hpp"

#include <connscope/error.hpp>

#include "../error_impl.hpp"
#include "host.hpp"

#include <cerrno>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

namespace connscope::detail {
namespace {

// The cgroup v2 root's id: the kernfs root's inode number.
constexpr std::uint64_t root_cgroup_id = 1;
// The initial cgroup namespace's inode number (PROC_CGROUP_INIT_INO).
constexpr std::uint64_t init_cgroup_ns_ino = 0xEFFFFFFBu;

struct Fd {
    int fd = -1;
    Fd() = default;
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd &) = delete;
    Fd &operator=(const Fd &) = delete;
    ~Fd()
    {
        if (fd >= 0)
            ::close(fd);
    }
    int release() { int f = fd; fd = -1; return f; }
};

// A directory fd on cgroup v2 and its cgroup id, or why not.
struct Opened {
    Fd fd;
    std::uint64_t id = 0;
    int err = 0;        // errno of the step that failed; 0 when it opened
    std::string why;    // when err: what failed
};

void check_cgroup2(Opened &o, const std::string &what)
{
    struct statfs fs {};
    struct stat st {};
    if (::fstatfs(o.fd.fd, &fs) != 0 || ::fstat(o.fd.fd, &st) != 0) {
        o.err = errno;
        o.why = "reading " + what + ": " + errno_text(o.err);
        return;
    }
    if (static_cast<unsigned long>(fs.f_type) != CGROUP2_SUPER_MAGIC) {
        o.err = EINVAL;
        o.why = what + " is not on cgroup v2 (cgroup2)";
        return;
    }
    o.id = static_cast<std::uint64_t>(st.st_ino); // a cgroup id is its directory's inode number
}

void open_path(Opened &o, const std::string &path)
{
    o.fd.fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (o.fd.fd < 0) {
        o.err = errno;
        o.why = "opening " + path + ": " + errno_text(o.err);
        return;
    }
    check_cgroup2(o, path);
}

// A mount of the unified hierarchy that is attached nowhere (fsopen/fsmount,
// Linux 5.2): nothing appears in any mount table, nothing is left behind when
// the fd is closed. It shows this process's cgroup namespace root.
void open_private_mount(Opened &o)
{
    Fd fs(static_cast<int>(::syscall(SYS_fsopen, "cgroup2", FSOPEN_CLOEXEC)));
    if (fs.fd < 0) {
        o.err = errno;
        o.why = "mounting cgroup2 privately (fsopen): " + errno_text(o.err);
        return;
    }
    if (::syscall(SYS_fsconfig, fs.fd, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
        o.err = errno;
        o.why = "mounting cgroup2 privately (fsconfig): " + errno_text(o.err);
        return;
    }
    Fd mnt(static_cast<int>(::syscall(SYS_fsmount, fs.fd, FSMOUNT_CLOEXEC,
                                      MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)));
    if (mnt.fd < 0) {
        o.err = errno;
        o.why = "mounting cgroup2 privately (fsmount): " + errno_text(o.err);
        return;
    }
    // fsmount gives an O_PATH fd, which bpf() does not take: open its root.
    o.fd.fd = ::openat(mnt.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (o.fd.fd < 0) {
        o.err = errno;
        o.why = "opening the private cgroup2 mount: " + errno_text(o.err);
        return;
    }
    check_cgroup2(o, "the private cgroup2 mount");
}

std::shared_ptr<const CgroupScope> make_scope(Opened &o, CgroupScope::Kind kind, std::string path, bool priv,
                                              std::string description)
{
    auto s = std::make_shared<CgroupScope>();
    s->kind = kind;
    s->fd = o.fd.release();
    s->id = o.id;
    s->path = std::move(path);
    s->private_mount = priv;
    s->description = std::move(description);
    return s;
}

std::uint64_t own_cgroup_ns()
{
    struct stat st {};
    return ::stat("/proc/self/ns/cgroup", &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

} // namespace

CgroupScope::~CgroupScope()
{
    if (fd >= 0)
        ::close(fd);
}

std::string CgroupScope::name() const { return private_mount ? std::string("the private cgroup2 mount") : path; }

CgroupScopeResult find_cgroup_scope(const std::string &requested)
{
    CgroupScopeResult out;
    if (!requested.empty()) {
        Opened o;
        open_path(o, requested);
        if (o.err)
            throw Error(o.err,
                        "cgroup root (cgroup_root, --cgroup-root): " + o.why +
                            "; give a directory of the cgroup v2 hierarchy (its mount point, or a cgroup below it)");
        if (o.id == root_cgroup_id) {
            out.scope = make_scope(o, CgroupScope::Kind::root, requested, false,
                                   "the cgroup v2 root (cgroup id 1) at " + requested + ", as asked: every process");
        } else {
            const std::string id = std::to_string(o.id);
            out.scope = make_scope(o, CgroupScope::Kind::subtree, requested, false,
                                   "the subtree at " + requested + " (cgroup id " + id + "), as asked: only the "
                                   "processes in it and below it");
        }
        return out;
    }

    // 1. A mount of our own that is the root.
    std::string seen; // the subtrees found, for the refusal
    bool own_opened = false; // a cgroup2 mount of ours opened (a subtree, as it was not the root)
    const auto own = host::mounts_of_type("cgroup2");
    for (const auto &m : own) {
        Opened o;
        open_path(o, m.mountpoint);
        if (o.err) {
            seen += (seen.empty() ? "" : ", ") + o.why;
            continue;
        }
        own_opened = true;
        if (o.id == root_cgroup_id)
            return {make_scope(o, CgroupScope::Kind::root, m.mountpoint, false,
                               "the cgroup v2 root (cgroup id 1) at " + m.mountpoint + ": every process"),
                    false, {}};
        seen += (seen.empty() ? "" : ", ") + m.mountpoint + " is cgroup id " + std::to_string(o.id) +
                " (mountinfo root " + m.root + ")";
    }

    // 2. The host's, through PID 1's root: where the host's PIDs are shared,
    // PID 1 is the host's init and its mount namespace has the host's mount.
    std::string pid1;
    const auto host_mounts = host::mounts_of_type("cgroup2", "/proc/1/mountinfo");
    for (const auto &m : host_mounts) {
        const std::string path = "/proc/1/root" + m.mountpoint;
        Opened o;
        open_path(o, path);
        if (o.err) {
            pid1 += (pid1.empty() ? "" : "; ") + o.why;
            if (o.err == EACCES || o.err == EPERM)
                pid1 += " (following PID 1's root takes CAP_SYS_PTRACE where PID 1 holds capabilities this "
                        "process lacks)";
            continue;
        }
        if (o.id == root_cgroup_id)
            return {make_scope(o, CgroupScope::Kind::root, path, false,
                               "the host's cgroup v2 root (cgroup id 1) at " + path +
                                   ", through PID 1's mount namespace" +
                                   (seen.empty() ? std::string() : " (" + seen + ", a subtree)") + ": every process"),
                    false, {}};
        pid1 += (pid1.empty() ? "" : "; ") + path + " is cgroup id " + std::to_string(o.id) +
                ", a subtree too (PID 1 is not the host's init: the host's PIDs are not shared)";
    }
    if (host_mounts.empty())
        pid1 = "/proc/1/mountinfo lists no cgroup2 mount";

    // 3. Nothing mounted anywhere we can see (a cgroup v1-only host): the
    // unified hierarchy is still there, with every process at its root.
    // Only then: a mount from the initial cgroup namespace sets the
    // hierarchy's options (nsdelegate, memory_localevents) to its own, and a
    // host that mounts cgroup2 somewhere has chosen them.
    if (!own_opened && host_mounts.empty()) {
        Opened o;
        open_private_mount(o);
        if (!o.err && o.id == root_cgroup_id)
            return {make_scope(o, CgroupScope::Kind::root, "", true,
                               "the cgroup v2 root (cgroup id 1), mounted privately because no cgroup v2 "
                               "hierarchy is mounted on this host (cgroup v1 only): every process"),
                    false, {}};
        if (!o.err) {
            out.subtree_only = true;
            out.why = "no cgroup v2 hierarchy is mounted, and a private mount of it shows cgroup id " +
                      std::to_string(o.id) + ", not the root (id 1): this process is in a cgroup namespace of its "
                      "own; run it in the host's cgroup namespace (docker run --cgroupns=host), or mount the host's "
                      "cgroup2 (a hostPath of /sys/fs/cgroup), or set cgroup_root (--cgroup-root PATH) to watch a "
                      "subtree on purpose";
            return out;
        }
        out.why = (own.empty() ? "no cgroup v2 hierarchy is mounted (checked /proc/self/mountinfo and "
                                 "/proc/1/mountinfo), and "
                               : "no cgroup v2 hierarchy is mounted that this process can open (" + seen + "), and ") +
                  o.why + (o.err == EPERM ? " (a mount takes CAP_SYS_ADMIN)" : "") +
                  "; grant CAP_SYS_ADMIN so the library can mount it privately, or mount it "
                  "(mount -t cgroup2 none /sys/fs/cgroup/unified)";
        return out;
    }
    if (!own_opened) {
        out.why = "no cgroup v2 hierarchy is mounted in this mount namespace" +
                  (seen.empty() ? std::string() : " that this process can open (" + seen + ")") +
                  ", and the host's, which PID 1's mount namespace has, is not reachable (" + pid1 +
                  "); mount the host's cgroup2 here (mount -t cgroup2 none /sys/fs/cgroup/unified, or a hostPath "
                  "of /sys/fs/cgroup), or grant CAP_SYS_PTRACE so /proc/1/root reaches it";
        return out;
    }

    out.subtree_only = true;
    const std::uint64_t ns = own_cgroup_ns();
    out.why = "the cgroup v2 hierarchy is reachable only as a subtree: " + seen +
              ", not the root (cgroup id 1), so programs attached there would see only the processes below it (" +
              (ns && ns != init_cgroup_ns_ino ? "this process is in a cgroup namespace of its own"
                                              : "a bind mount of a subtree") +
              "); the host's root was not found through /proc/1/root either (" + pid1 +
              "); run with the host's cgroup namespace (docker run --cgroupns=host), or share the host's PIDs "
              "(hostPID, with CAP_SYS_PTRACE), or mount the host's cgroup2 over /sys/fs/cgroup (a hostPath), or "
              "set cgroup_root (--cgroup-root " +
              (own.empty() ? std::string("PATH") : own.front().mountpoint) + ") to watch this subtree on purpose";
    return out;
}

} // namespace connscope::detail
