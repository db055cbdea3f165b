// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Facts about the running host that decide what the Session can do.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace connscope::host {

// Where the cgroup v2 hierarchy is mounted (hybrid hosts have it at
// /sys/fs/cgroup/unified), from /proc/self/mountinfo; nothing if none is.
std::optional<std::string> cgroup2_mount();

// A mount of one filesystem type, from a mountinfo file.
struct Mount {
    std::string root;       // the directory of the filesystem it shows ("/" for the whole)
    std::string mountpoint; // where, in the namespace of the mountinfo's process
};

// Every mount of fstype in mountinfo (/proc/self/mountinfo, /proc/1/mountinfo),
// in mount order; empty when none or when the file cannot be read.
std::vector<Mount> mounts_of_type(const std::string &fstype, const std::string &mountinfo = "/proc/self/mountinfo");

bool kernel_has_btf();

// The inode of this process's network namespace (what events carry as
// ns.net), or 0 when /proc cannot say.
std::uint64_t own_netns_inode();

// The running kernel's release, as uname -r prints it.
std::string kernel_release();

// Whether the kernel's BTF has the name (a function, type or field), read
// afresh each time: for explaining a refusal, not for a hot path.
bool kernel_btf_has_name(const std::string &name);

// Where the kernel charges BPF memory to RLIMIT_MEMLOCK (before Linux 5.11,
// which moved it to the memory cgroup) and that limit is finite: the limit in
// bytes. Nothing where the limit cannot be what refused a load.
std::optional<std::uint64_t> bpf_memlock_limit();

// A CONFIG_ option of the running kernel ("y", "m", a value, or "" for "is
// not set"), from /proc/config.gz or /boot/config-RELEASE; nothing when
// neither is readable. For explaining a refusal, not for a hot path.
std::optional<std::string> kernel_config(const std::string &option);

// Whether the kernel offers kprobes through perf (the kprobe PMU) or tracefs.
bool kernel_has_kprobes();

// Whether cgroup programs may call bpf_get_current_task_btf (Linux 5.15 and
// later; tracing programs have it from 5.11). Probed once by loading a
// two-instruction program.
bool cgroup_has_task_btf();

// Whether tracefs shows syscalls/sys_enter_connect (mounted, and the kernel
// has syscall tracepoints).
bool tracefs_has_connect_event();

// The active LSMs in the kernel's order ("lockdown,capability,...,bpf"), from
// securityfs or an lsm= boot parameter; nothing when neither says.
std::optional<std::string> active_lsms();

// THREAD_SIZE of the running kernel, where the syscall's user registers sit
// below the top of the kernel stack: 16 KiB, doubled by KASAN (x86_64 and
// arm64 alike), and on arm64 at least a page (64 KiB pages: 64 KiB). KASAN is
// seen by its functions in the kernel's BTF.
std::uint32_t kernel_thread_size();

// Which of CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN the process lacks (CAP_SYS_ADMIN
// stands in for the first two, as the kernel allows); empty when none.
std::string missing_capabilities();

// Whether the calling thread holds capability bit (CAP_*) in its effective set.
bool has_effective_capability(int bit);

// Unix-epoch ns minus boot-clock ns, now.
std::int64_t boot_to_realtime_offset_ns();

// Reads a whole small file; nothing if it cannot be opened.
std::optional<std::string> read_file(const std::string &path);

} // namespace connscope::host
