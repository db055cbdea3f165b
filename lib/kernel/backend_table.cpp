// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The backends, one entry each, in auto's preference order. Each names the
// programs of bpf/*.bpf.c it loads; backend.cpp does the loading.
#include "backend.hpp"

#include "error_impl.hpp"
#include "host.hpp"

#include <cerrno>

namespace connscope::detail {
namespace {

// Not in Debian 12's UAPI headers; the kernel's enum value since 6.7.
constexpr int attach_cgroup_unix_connect = 49;

std::string privilege_remedy(const Refusal &r)
{
    if (r.err != EPERM && r.err != EACCES)
        return {};
    auto missing = host::missing_capabilities();
    return missing.empty() ? std::string{} : "missing " + missing + ": run as root or grant them";
}

// "; CONFIG_X is not set" when the kernel's config is readable and says so.
std::string config_off(const char *option)
{
    auto value = host::kernel_config(option);
    return value && value->empty() ? std::string("; ") + option + " is not set" : std::string();
}

// Why a kernel has no BPF trampolines on its functions: without ftrace's
// direct calls, a trampoline cannot take over an ftrace-managed function entry.
std::string trampoline_limit()
{
#if defined(__aarch64__)
    // arm64's JIT makes trampolines from 6.0, but the direct calls came in 6.4;
    // said even where the kernel's config cannot be read.
    auto value = host::kernel_config("CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS");
    if (value && !value->empty())
        return {};
    return " (arm64 kernels make them only with CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS, from Linux 6.4; this is " +
           host::kernel_release() + (value ? ", where it is not set)" : ")");
#else
    return config_off("CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS");
#endif
}

// lsm and fentry are both BPF trampolines on a kernel function. What is left
// to explain after the verifier's own words and the capabilities.
std::string trampoline_remedy(const Refusal &r, const char *others)
{
    auto priv = privilege_remedy(r);
    if (!priv.empty())
        return priv;
    if (!r.kernel_says.empty())
        return std::string("use backend ") + others;
    if (r.err == kernel_enotsupp || r.err == EOPNOTSUPP || r.err == ENOTSUP)
        return "this kernel cannot make BPF trampolines" + trampoline_limit() + "; use backend " + others;
    if (r.err == EPERM || r.err == EACCES)
        return "the kernel refused before verifying the program although this process has CAP_BPF and "
               "CAP_PERFMON, which points to a security policy against BPF trampoline programs (an LSM such as "
               "SELinux, or a BPF LSM program); use backend " +
               std::string(others);
    return std::string("use backend ") + others;
}

std::string lsm_remedy(const Refusal &r)
{
    // Without CONFIG_BPF_LSM the kernel knows no BPF LSM hooks (and says EINVAL).
    if (r.step == Refusal::Step::load && r.kernel_says.empty() && r.err == EINVAL &&
        !host::kernel_btf_has_name("bpf_lsm_socket_connect"))
        return "this kernel has no BPF LSM hooks (no bpf_lsm_socket_connect in its BTF" + config_off("CONFIG_BPF_LSM") +
               "); use backend fentry, kprobe or cgroup";
    return trampoline_remedy(r, "fentry, kprobe or cgroup");
}

std::string fentry_remedy(const Refusal &r) { return trampoline_remedy(r, "kprobe or cgroup"); }

std::string kprobe_remedy(const Refusal &r)
{
    auto priv = privilege_remedy(r);
    if (!priv.empty())
        return priv;
    if (r.step == Refusal::Step::attach && (r.err == ENOENT || r.err == EOPNOTSUPP || r.err == ENOTSUP)) {
        if (!host::kernel_has_kprobes())
            return "this kernel has no kprobes (no kprobe PMU in /sys/bus/event_source/devices" +
                   config_off("CONFIG_KPROBES") + "); use backend cgroup";
        return "the kernel has kprobes but refused one on security_socket_connect (not in /proc/kallsyms, or on "
               "the kprobe blacklist); use backend cgroup";
    }
    return "use backend cgroup";
}

std::string cgroup_remedy(const Refusal &r)
{
    auto priv = privilege_remedy(r);
    if (!priv.empty() || r.step != Refusal::Step::attach)
        return priv;
    return "use backend tracepoint";
}

std::string tracepoint_remedy(const Refusal &r)
{
    auto priv = privilege_remedy(r);
    if (!priv.empty())
        return priv;
    auto off = config_off("CONFIG_FTRACE_SYSCALLS");
    return off.empty() ? std::string{} : "this kernel has no syscall tracepoints" + off;
}

// BPF LSM programs load and attach even when "bpf" is not among the active
// LSMs, and then never run; so the active list decides.
void check_bpf_lsm_active()
{
    auto list = host::active_lsms();
    if (!list)
        return; // the kernel's default list; nothing says bpf is missing
    if (("," + *list + ",").find(",bpf,") == std::string::npos)
        throw BackendFailure(ENOENT, "checking the active LSMs: BPF LSM is not active (active LSMs: " + *list +
                                         "), so lsm/socket_connect would load but never run; add 'bpf' to "
                                         "the lsm= boot parameter");
}

bool tracefs_mounted() { return host::tracefs_has_connect_event(); }

// io_uring's submission tracepoint is io_uring_submit_req from Linux 6.3,
// io_uring_submit_sqe before; a kernel has one or the other.
bool has_io_uring_submit_req()
{
    static const bool has = host::kernel_btf_has_name("btf_trace_io_uring_submit_req");
    return has;
}

bool lacks_io_uring_submit_req() { return !has_io_uring_submit_req(); }

// From 6.2. A kernel that has it also lets cgroup programs call
// bpf_get_current_task_btf (5.15).
bool cgroup_has_kfunc_cast_to_kern_ctx()
{
    static const bool has = host::kernel_btf_has_name("bpf_cast_to_kern_ctx");
    return has;
}

} // namespace

const std::vector<ProgramSpec> &outcome_program_table()
{
    static const char *const result_gap =
        "connect outcomes: the system call's result, and connect(2)s an LSM refused before the hook";
    static const char *const verdict_gap = "the LSM verdict of a connect";
    // In this order: the state change, the exits with tracefs, the exit
    // without it, then one verdict program per backend that has one.
    static const std::vector<ProgramSpec> table{
        {"handle_inet_sock_set_state", "tp_btf/inet_sock_set_state", AttachKind::tracing, -1,
         {"TCP outcomes: the end of the handshake, the local endpoint"}},
        {"handle_sys_exit_connect", "tracepoint/syscalls/sys_exit_connect", AttachKind::tracing, -1, {result_gap}},
        {"handle_sys_exit_sendto", "tracepoint/syscalls/sys_exit_sendto", AttachKind::tracing, -1,
         {"Fast Open outcomes of sendto"}},
        {"handle_sys_exit_sendmsg", "tracepoint/syscalls/sys_exit_sendmsg", AttachKind::tracing, -1,
         {"Fast Open outcomes of sendmsg"}},
        {"handle_sys_exit_sendmmsg", "tracepoint/syscalls/sys_exit_sendmmsg", AttachKind::tracing, -1,
         {"Fast Open outcomes of sendmmsg"}},
        // Without tracefs: one program on every system call's exit.
        {"handle_tp_btf_sys_exit", "tp_btf/sys_exit", AttachKind::tracing, -1, {result_gap}},
        {"handle_fexit_security_socket_connect", "fexit/security_socket_connect", AttachKind::tracing, -1,
         {verdict_gap}},
        {"handle_kretprobe_security_socket_connect", "kretprobe/security_socket_connect", AttachKind::tracing, -1,
         {verdict_gap}},
    };
    return table;
}

std::vector<const ProgramSpec *> outcome_programs(const BackendDescription &backend)
{
    const auto &t = outcome_program_table();
    std::vector<const ProgramSpec *> out{&t[0]};
    if (tracefs_mounted())
        for (std::size_t i = 1; i <= 4; ++i)
            out.push_back(&t[i]);
    else
        out.push_back(&t[5]);
    const std::string name = backend.name;
    if (name == "fentry")
        out.push_back(&t[6]);
    else if (name == "kprobe")
        out.push_back(&t[7]);
    return out;
}

std::vector<const ProgramSpec *> refused_attempt_programs()
{
    const auto &t = outcome_program_table();
    return {tracefs_mounted() ? &t[1] : &t[5]};
}

bool hook_after_lsms(const BackendDescription &backend)
{
    const std::string name = backend.name;
    return name == "cgroup" || name == "lsm";
}

const std::vector<BackendDescription> &backend_table()
{
    // Optional: where the kernel refuses it, the cgroup backend runs without it.
    static const ProgramSpec cgroup_connect_unix{
        "handle_connect_unix",
        "cgroup/connect_unix",
        AttachKind::cgroup,
        attach_cgroup_unix_connect,
        {"UNIX connects: cgroup/connect_unix needs Linux 6.7 or later",
         "IPv6 scope ids (reported as 0: the cgroup hook tells how many address bytes the caller passed only from "
         "Linux 6.7)"}};
    // The tracepoint backend's io_uring programs, with either variant.
    static const char *const io_uring_gap =
        "io_uring connects (IORING_OP_CONNECT) on this kernel: its io_uring_submit_sqe tracepoint passes the "
        "ring, not the request that holds the address (Linux 6.0 passes the request)";
    static const ProgramSpec io_uring_submit_req{"handle_io_uring_submit_req", "tp_btf/io_uring_submit_req",
                                                 AttachKind::tracing, -1, {io_uring_gap}, has_io_uring_submit_req};
    static const ProgramSpec io_uring_submit_sqe{"handle_io_uring_submit_sqe", "tp_btf/io_uring_submit_sqe",
                                                 AttachKind::tracing, -1, {io_uring_gap}, lacks_io_uring_submit_req};
    static const std::vector<BackendDescription> table{
        {"fentry",
         "the kernel's copy, before any LSM decides (Fast Open: the send's `msg_name`)",
         "BPF trampolines",
         {{nullptr,
           nullptr,
           {{"handle_fentry_security_socket_connect", "fentry/security_socket_connect"},
            {"handle_fentry_security_socket_sendmsg", "fentry/security_socket_sendmsg"}}}},
         fentry_remedy},
        {"lsm",
         "the kernel's copy, after the LSMs before `bpf` in `lsm=` allowed the connect (Fast Open: the send)",
         "`bpf` in the `lsm=` boot parameter (CONFIG_BPF_LSM), BPF trampolines",
         {{nullptr,
           nullptr,
           {{"handle_lsm_socket_connect", "lsm/socket_connect"}, {"handle_lsm_socket_sendmsg", "lsm/socket_sendmsg"}}}},
         lsm_remedy,
         check_bpf_lsm_active,
         {"Fast Open sends and io_uring connects another LSM refused first (the kernel stops at the first refusal, "
          "and bpf is last in lsm=); a connect(2) refused so is reported when the system call returns, from the "
          "caller's copy of the address (toctou)"}},
        {"kprobe",
         "the kernel's copy, before any LSM decides (Fast Open: the send's `msg_name`)",
         "CONFIG_KPROBES",
         {{nullptr,
           nullptr,
           {{"handle_kprobe_security_socket_connect", "kprobe/security_socket_connect"},
            {"handle_kprobe_security_socket_sendmsg", "kprobe/security_socket_sendmsg"}}}},
         kprobe_remedy},
        {"cgroup",
         "the kernel's copy, after the LSM check",
         "a cgroup v2 hierarchy (UNIX connects: Linux 6.7)",
         {{cgroup_has_kfunc_cast_to_kern_ctx,
           nullptr,
           {{"handle_connect4", "cgroup/connect4", AttachKind::cgroup},
            {"handle_connect6", "cgroup/connect6", AttachKind::cgroup},
            cgroup_connect_unix}},
          // 5.15 to 6.1: without the weak kfunc, which 5.13 to 5.15 refuse unresolved.
          {host::cgroup_has_task_btf,
           nullptr,
           {{"handle_connect4", "cgroup/connect4", AttachKind::cgroup},
            {"handle_connect6_no_kfunc", "cgroup/connect6", AttachKind::cgroup},
            cgroup_connect_unix}},
          {nullptr,
           "cgroup programs cannot take the BTF task pointer before Linux 5.15, so the process fields cost a "
           "helper call each",
           {{"handle_connect4_compat", "cgroup/connect4", AttachKind::cgroup},
            {"handle_connect6_compat", "cgroup/connect6", AttachKind::cgroup},
            cgroup_connect_unix}}},
         cgroup_remedy,
         nullptr,
         {"Fast Open sends and io_uring connects refused by an LSM before the cgroup hook runs; a connect(2) refused "
          "so is reported when the system call returns, from the caller's copy of the address (toctou)"}},
        {"tracepoint",
         "the caller's memory, at the entry of connect, of a send with `MSG_FASTOPEN`, and at io_uring's submission "
         "(`toctou = true`)",
         "syscall tracepoints (tracefs mounted for the cheaper ones; `tp_btf/sys_enter` runs on every syscall); "
         "io_uring: Linux 6.0",
         {{tracefs_mounted,
           nullptr,
           {{"handle_sys_enter_connect", "tracepoint/syscalls/sys_enter_connect"},
            {"handle_sys_enter_sendto", "tracepoint/syscalls/sys_enter_sendto"},
            {"handle_sys_enter_sendmsg", "tracepoint/syscalls/sys_enter_sendmsg"},
            {"handle_sys_enter_sendmmsg", "tracepoint/syscalls/sys_enter_sendmmsg"},
            io_uring_submit_req,
            io_uring_submit_sqe}},
          {nullptr,
           "tracefs is not mounted, so the cheaper syscalls/sys_enter_* are not reachable: mount -t tracefs "
           "nodev /sys/kernel/tracing",
           {{"handle_tp_btf_sys_enter", "tp_btf/sys_enter"}, io_uring_submit_req, io_uring_submit_sqe}}},
         tracepoint_remedy,
         nullptr,
         {"Fast Open sends submitted through io_uring (IORING_OP_SENDMSG, IORING_OP_SEND with MSG_FASTOPEN)",
          "32-bit connects and Fast Open sends (x86 ia32 and arm64 AArch32 system calls: the syscall tracepoints skip them)",
          "the LSM verdict of a connect (outcomes carry the system call's result only)",
          "the address is the caller's copy, read before the kernel's (toctou=true)"}},
    };
    return table;
}

} // namespace connscope::detail
