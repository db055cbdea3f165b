// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <connscope/error.hpp>

#include "error_impl.hpp"

#include <cstdio>
#include <cstring>

namespace connscope {
namespace detail {

const char *errc_description(int code) noexcept
{
    switch (static_cast<Errc>(code)) {
    case Errc::backend_unavailable: return "no requested backend can run on this kernel";
    case Errc::no_cgroup2: return "no cgroup v2 hierarchy is mounted";
    case Errc::no_btf: return "the kernel has no BTF";
    case Errc::moved_from: return "the session was moved from and holds nothing";
    case Errc::callback_failed: return "a callback failed";
    case Errc::internal: return "internal error in connscope";
    case Errc::hook_not_firing: return "the hooks are attached but do not fire";
    case Errc::cgroup_subtree: return "only a subtree of the cgroup v2 hierarchy is reachable";
    }
    return nullptr;
}

const char *errno_description(int err) noexcept
{
    if (err == kernel_enotsupp)
        return "Operation not supported by this kernel";
    if (const char *s = strerrordesc_np(err))
        return s;
    thread_local char unknown[48];
    std::snprintf(unknown, sizeof(unknown), "Unknown error %d", err);
    return unknown;
}

std::string errno_text(int err)
{
    err = err < 0 ? -err : err;
    if (err == kernel_enotsupp)
        return "ENOTSUPP (524): " + std::string(errno_description(err));
    const char *name = strerrorname_np(err);
    return (name ? std::string(name) : "E" + std::to_string(err)) + ": " + errno_description(err);
}

} // namespace detail

namespace {

class Category final : public std::error_category {
public:
    const char *name() const noexcept override { return "connscope"; }

    std::string message(int code) const override
    {
        if (const char *s = detail::errc_description(code))
            return s;
        return detail::errno_description(code);
    }

    // Codes below 4000 are errno values: they compare equal to std::errc.
    std::error_condition default_error_condition(int code) const noexcept override
    {
        if (detail::errc_description(code))
            return {code, *this};
        return {code, std::generic_category()};
    }
};

} // namespace

const std::error_category &category() noexcept
{
    static const Category instance;
    return instance;
}

std::error_code make_error_code(Errc code) noexcept { return {static_cast<int>(code), category()}; }

Error::Error(int code, const std::string &message)
    : std::system_error(code, category(), message)
{
}

Error::Error(Errc code, const std::string &message) : Error(static_cast<int>(code), message) {}

} // namespace connscope
