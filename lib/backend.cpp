// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "backend.hpp"

#include "connscope_connect.skel.h"
#include "system.hpp"

#include <algorithm>
#include <bpf/libbpf.h>
#include <cerrno>
#include <fcntl.h>
#include <functional>
#include <unistd.h>

namespace connscope::detail {
namespace {

// Not in Debian 12's UAPI headers; the kernel's enum value since 6.7.
constexpr bpf_attach_type attach_cgroup_unix_connect = static_cast<bpf_attach_type>(49);

} // namespace

AttachedBackend::AttachedBackend(AttachedBackend &&other) noexcept
    : skel(other.skel), links(std::move(other.links)), gaps(std::move(other.gaps)),
      detail(std::move(other.detail))
{
    other.skel = nullptr;
    other.links.clear();
}

AttachedBackend &AttachedBackend::operator=(AttachedBackend &&other) noexcept
{
    if (this != &other) {
        release();
        skel = other.skel;
        links = std::move(other.links);
        gaps = std::move(other.gaps);
        detail = std::move(other.detail);
        other.skel = nullptr;
        other.links.clear();
    }
    return *this;
}

AttachedBackend::~AttachedBackend() { release(); }

void AttachedBackend::release() noexcept
{
    for (auto *link : links)
        bpf_link__destroy(link);
    links.clear();
    connscope_connect_bpf__destroy(skel);
    skel = nullptr;
}

namespace {

using Remedy = std::function<std::string(int err)>;

[[noreturn]] void fail(const std::string &step, int err, const std::string &remedy)
{
    std::string reason = step + ": " + sys::errno_text(err);
    if (!remedy.empty())
        reason += "; " + remedy;
    throw BackendFailure(err, reason);
}

std::string privilege_remedy(int err)
{
    if (err != EPERM && err != EACCES)
        return {};
    auto missing = sys::missing_capabilities();
    return missing.empty() ? std::string{}
                           : "missing " + missing + ": run as root or grant them";
}

std::vector<bpf_program *> all_programs(connscope_connect_bpf *s)
{
    auto &p = s->progs;
    return {p.handle_connect4,
            p.handle_connect6,
            p.handle_connect_unix,
            p.handle_lsm_socket_connect,
            p.handle_fentry_security_socket_connect,
            p.handle_kprobe_security_socket_connect,
            p.handle_sys_enter_connect,
            p.handle_tp_btf_sys_enter};
}

// Opens the object with only `programs` to be loaded, and the settings applied.
connscope_connect_bpf *open_with(const std::vector<bpf_program *(*)(connscope_connect_bpf *)> &pick,
                                 const LoadSettings &settings)
{
    connscope_connect_bpf *skel = connscope_connect_bpf__open();
    if (!skel)
        fail("opening the connect BPF object", errno, "");
    for (auto *prog : all_programs(skel))
        bpf_program__set_autoload(prog, false);
    for (auto get : pick)
        bpf_program__set_autoload(get(skel), true);
    bpf_map__set_max_entries(skel->maps.events_rb, static_cast<__u32>(settings.ring_size));
    skel->rodata->wakeup_watermark = settings.wakeup_watermark;
    return skel;
}

struct Skel {
    connscope_connect_bpf *p = nullptr;
    ~Skel() { connscope_connect_bpf__destroy(p); }
};

void load(Skel &skel, const std::string &what, const Remedy &remedy, const LoadSettings &settings)
{
    int err = connscope_connect_bpf__load(skel.p);
    if (err)
        fail("loading " + what, -err, remedy(-err));
    if (settings.before_attach)
        settings.before_attach(skel.p);
}

bpf_link *attach(bpf_program *prog, const std::string &what, const Remedy &remedy,
                 int cgroup_fd = -1)
{
    bpf_link *link = cgroup_fd >= 0 ? bpf_program__attach_cgroup(prog, cgroup_fd)
                                    : bpf_program__attach(prog);
    if (!link) {
        int err = errno;
        fail("attaching " + what, err, remedy(err));
    }
    return link;
}

AttachedBackend finish(Skel &skel, std::vector<bpf_link *> links, std::string detail)
{
    AttachedBackend out;
    out.skel = skel.p;
    skel.p = nullptr;
    out.links = std::move(links);
    out.detail = std::move(detail);
    return out;
}

// lsm, fentry, kprobe: one program on security_socket_connect.
AttachedBackend attach_single(bpf_program *(*pick)(connscope_connect_bpf *), const std::string &what,
                              const LoadSettings &settings, const Remedy &remedy)
{
    Skel skel{open_with({pick}, settings)};
    load(skel, what, remedy, settings);
    std::vector<bpf_link *> links{attach(pick(skel.p), what, remedy)};
    return finish(skel, std::move(links), what);
}

std::string lsm_remedy(int err)
{
    auto priv = privilege_remedy(err);
    if (!priv.empty() && err == EACCES)
        return priv;
    if (err == EPERM || err == EINVAL || err == 524) {
        std::string active;
        if (auto list = sys::read_file("/sys/kernel/security/lsm"))
            active = " (active LSMs: " + *list + ")";
        return "this kernel refuses BPF trampolines or BPF LSM is not active" + active +
               "; add 'bpf' to the lsm= boot parameter (needs CONFIG_BPF_LSM), or use backend cgroup";
    }
    return priv;
}

std::string fentry_remedy(int err)
{
    if (err == EPERM || err == 524 || err == ENOTSUP || err == EINVAL)
        return "this kernel refuses BPF trampolines (fentry needs CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS "
               "and no lockdown of them); use backend kprobe or cgroup";
    return privilege_remedy(err);
}

std::string kprobe_remedy(int err)
{
    if (err == ENOENT || err == EOPNOTSUPP || err == ENOTSUP)
        return "kprobes are not available: the kernel lacks CONFIG_KPROBES or cannot probe "
               "security_socket_connect; use backend cgroup";
    return privilege_remedy(err);
}

// BPF LSM programs load and attach even when "bpf" is not among the active
// LSMs, and then never run; so the active list decides. It is read from
// securityfs, or failing that from an lsm= boot parameter.
void check_bpf_lsm_active()
{
    std::string list;
    if (auto active = sys::read_file("/sys/kernel/security/lsm")) {
        list = *active;
    } else if (auto cmdline = sys::read_file("/proc/cmdline")) {
        auto pos = cmdline->find("lsm=");
        if (pos == std::string::npos || (pos > 0 && (*cmdline)[pos - 1] != ' '))
            return; // the kernel's default list; nothing says bpf is missing
        list = cmdline->substr(pos + 4, cmdline->find_first_of(" \n", pos) - pos - 4);
    } else {
        return;
    }
    list.erase(list.find_last_not_of(" \n") + 1);
    if (("," + list + ",").find(",bpf,") == std::string::npos)
        throw BackendFailure(ENOENT, "checking the active LSMs: BPF LSM is not active (active LSMs: " + list +
                                         "), so lsm/socket_connect would load but never run; add 'bpf' to "
                                         "the lsm= boot parameter");
}

AttachedBackend attach_cgroup_backend(const LoadSettings &settings)
{
    if (!settings.cgroup2_path)
        fail("finding the cgroup v2 root", ENOENT,
             "no cgroup v2 hierarchy is mounted: mount one (mount -t cgroup2 none /sys/fs/cgroup/unified)");
    int fd = ::open(settings.cgroup2_path->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        fail("opening the cgroup v2 root " + *settings.cgroup2_path, errno, privilege_remedy(errno));
    struct Fd {
        int fd;
        ~Fd() { ::close(fd); }
    } cgroup{fd};

    auto get4 = [](connscope_connect_bpf *s) { return s->progs.handle_connect4; };
    auto get6 = [](connscope_connect_bpf *s) { return s->progs.handle_connect6; };
    auto getu = [](connscope_connect_bpf *s) { return s->progs.handle_connect_unix; };
    std::vector<std::string> gaps;

    // connect_unix exists from Linux 6.7; where the kernel refuses it, run without.
    for (bool with_unix : {true, false}) {
        Skel skel{with_unix ? open_with({get4, get6, getu}, settings) : open_with({get4, get6}, settings)};
        if (with_unix)
            bpf_program__set_expected_attach_type(skel.p->progs.handle_connect_unix,
                                                  attach_cgroup_unix_connect);
        int err = connscope_connect_bpf__load(skel.p);
        if (err && with_unix) {
            gaps.push_back("UNIX connects: cgroup/connect_unix did not load (" + sys::errno_text(-err) +
                           "; it needs Linux 6.7 or later)");
            continue;
        }
        if (err)
            fail("loading cgroup/connect4 and cgroup/connect6", -err, privilege_remedy(-err));
        if (settings.before_attach)
            settings.before_attach(skel.p);
        std::vector<bpf_link *> links;
        auto cleanup = [&] {
            for (auto *l : links)
                bpf_link__destroy(l);
        };
        try {
            links.push_back(attach(skel.p->progs.handle_connect4, "cgroup/connect4", privilege_remedy, fd));
            links.push_back(attach(skel.p->progs.handle_connect6, "cgroup/connect6", privilege_remedy, fd));
            if (with_unix)
                links.push_back(attach(skel.p->progs.handle_connect_unix, "cgroup/connect_unix",
                                       privilege_remedy, fd));
        } catch (...) {
            cleanup();
            throw;
        }
        if (!with_unix)
            gaps.push_back("IPv6 scope ids (reported as 0: the cgroup hook tells how many address bytes "
                           "the caller passed only from Linux 6.7)");
        auto out = finish(skel, std::move(links),
                          with_unix ? "cgroup/connect4, cgroup/connect6, cgroup/connect_unix on " +
                                          *settings.cgroup2_path
                                    : "cgroup/connect4, cgroup/connect6 on " + *settings.cgroup2_path);
        out.gaps = gaps;
        out.gaps.push_back("connects refused by an LSM before the cgroup hook runs");
        return out;
    }
    throw BackendFailure(EINVAL, "unreachable");
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

AttachedBackend attach_tracepoint_backend(const LoadSettings &settings)
{
    AttachedBackend out;
    if (tracefs_has_connect_event()) {
        out = attach_single([](connscope_connect_bpf *s) { return s->progs.handle_sys_enter_connect; },
                            "tracepoint/syscalls/sys_enter_connect", settings, privilege_remedy);
    } else {
        out = attach_single([](connscope_connect_bpf *s) { return s->progs.handle_tp_btf_sys_enter; },
                            "tp_btf/sys_enter", settings, privilege_remedy);
        out.detail += " (tracefs is not mounted, so the cheaper syscalls/sys_enter_connect is not "
                      "reachable: mount -t tracefs nodev /sys/kernel/tracing)";
    }
    out.gaps.push_back("io_uring connects (they make no connect syscall)");
    out.gaps.push_back("the address is the caller's copy, read before the kernel's (toctou=true)");
    return out;
}

} // namespace

AttachedBackend attach_backend(const std::string &name, const LoadSettings &settings)
{
    if (name == "lsm") {
        auto out = attach_single([](connscope_connect_bpf *s) { return s->progs.handle_lsm_socket_connect; },
                                 "lsm/socket_connect", settings, lsm_remedy);
        check_bpf_lsm_active();
        return out;
    }
    if (name == "fentry")
        return attach_single(
            [](connscope_connect_bpf *s) { return s->progs.handle_fentry_security_socket_connect; },
            "fentry/security_socket_connect", settings, fentry_remedy);
    if (name == "kprobe")
        return attach_single(
            [](connscope_connect_bpf *s) { return s->progs.handle_kprobe_security_socket_connect; },
            "kprobe/security_socket_connect", settings, kprobe_remedy);
    if (name == "cgroup")
        return attach_cgroup_backend(settings);
    if (name == "tracepoint")
        return attach_tracepoint_backend(settings);
    throw BackendFailure(EINVAL, "unknown backend '" + name + "'");
}

} // namespace connscope::detail
