// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The programs a Session has attached, each with what it takes to attach it
// again: another root process can detach a link (bpftool link detach), and
// the Session's liveness check finds that out and repairs it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

struct bpf_link;
struct bpf_program;

namespace connscope::detail {

struct CgroupScope;

class OwnedLink {
public:
    // Takes ownership of link; cgroup is set for a program attached to a cgroup
    // (its fd is how it is attached again, also when no path on the host leads there).
    OwnedLink(bpf_link *link, bpf_program *program, std::string hook, std::shared_ptr<const CgroupScope> cgroup);
    OwnedLink(OwnedLink &&other) noexcept;
    OwnedLink &operator=(OwnedLink &&other) noexcept;
    OwnedLink(const OwnedLink &) = delete;
    OwnedLink &operator=(const OwnedLink &) = delete;
    ~OwnedLink();

    // "cgroup/connect4 on /sys/fs/cgroup/unified", as messages name it.
    std::string name() const;
    // False once the kernel has let go of it: a detached cgroup link has no
    // cgroup any more. Links of other kinds cannot be detached from outside
    // (the kernel refuses BPF_LINK_DETACH for them), so they stay true.
    bool attached() const;
    // Destroys the link and attaches the program again; "" or what failed.
    std::string reattach();

private:
    bpf_link *link_ = nullptr;
    bpf_program *program_ = nullptr;
    std::string hook_;
    std::shared_ptr<const CgroupScope> cgroup_;
};

using OwnedLinks = std::vector<OwnedLink>;

} // namespace connscope::detail
