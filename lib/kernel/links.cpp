// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "links.hpp"

#include "../error_impl.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <fcntl.h>
#include <linux/bpf.h>
#include <unistd.h>
#include <utility>

namespace connscope::detail {

OwnedLink::OwnedLink(bpf_link *link, bpf_program *program, std::string hook,
                     std::optional<std::string> cgroup_path)
    : link_(link), program_(program), hook_(std::move(hook)), cgroup_path_(std::move(cgroup_path))
{
}

OwnedLink::OwnedLink(OwnedLink &&other) noexcept
    : link_(std::exchange(other.link_, nullptr)), program_(other.program_), hook_(std::move(other.hook_)),
      cgroup_path_(std::move(other.cgroup_path_))
{
}

OwnedLink &OwnedLink::operator=(OwnedLink &&other) noexcept
{
    if (this != &other) {
        bpf_link__destroy(link_);
        link_ = std::exchange(other.link_, nullptr);
        program_ = other.program_;
        hook_ = std::move(other.hook_);
        cgroup_path_ = std::move(other.cgroup_path_);
    }
    return *this;
}

OwnedLink::~OwnedLink() { bpf_link__destroy(link_); }

std::string OwnedLink::name() const { return cgroup_path_ ? hook_ + " on " + *cgroup_path_ : hook_; }

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
    if (cgroup_path_) {
        const int fd = ::open(cgroup_path_->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return "opening " + *cgroup_path_ + ": " + errno_text(errno);
        link_ = bpf_program__attach_cgroup(program_, fd);
        const int err = errno;
        ::close(fd);
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
