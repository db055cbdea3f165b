// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "links.hpp"

#include "../error_impl.hpp"
#include "cgroup_root.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <fcntl.h>
#include <linux/bpf.h>
#include <unistd.h>
#include <utility>

namespace connscope::detail {

OwnedLink::OwnedLink(bpf_link *link, bpf_program *program, std::string hook,
                     std::shared_ptr<const CgroupScope> cgroup)
    : link_(link), program_(program), hook_(std::move(hook)), cgroup_(std::move(cgroup))
{
}

OwnedLink::OwnedLink(OwnedLink &&other) noexcept
    : link_(std::exchange(other.link_, nullptr)), program_(other.program_), hook_(std::move(other.hook_)),
      cgroup_(std::move(other.cgroup_))
{
}

OwnedLink &OwnedLink::operator=(OwnedLink &&other) noexcept
{
    if (this != &other) {
        bpf_link__destroy(link_);
        link_ = std::exchange(other.link_, nullptr);
        program_ = other.program_;
        hook_ = std::move(other.hook_);
        cgroup_ = std::move(other.cgroup_);
    }
    return *this;
}

OwnedLink::~OwnedLink() { bpf_link__destroy(link_); }

std::string OwnedLink::name() const { return cgroup_ ? hook_ + " on " + cgroup_->name() : hook_; }

bool OwnedLink::attached() const
{
    if (!link_)
        return false;
    bpf_link_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(bpf_link__fd(link_), &info, &len) != 0)
        return true; // cannot tell; the canary still can
    if (info.type == BPF_LINK_TYPE_CGROUP)
        return info.cgroup.cgroup_id != 0;
    return true;
}

std::string OwnedLink::reattach()
{
    bpf_link__destroy(link_);
    link_ = nullptr;
    if (cgroup_) {
        link_ = bpf_program__attach_cgroup(program_, cgroup_->fd);
        const int err = errno;
        if (!link_)
            return "attaching " + name() + " again: " + errno_text(err);
        return {};
    }
    link_ = bpf_program__attach(program_);
    if (!link_)
        return "attaching " + name() + " again: " + errno_text(errno);
    return {};
}

} // namespace connscope::detail
