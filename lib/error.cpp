// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <connscope/error.hpp>

#include <cstring>

namespace connscope {
namespace {

class Category final : public std::error_category {
public:
    const char *name() const noexcept override { return "connscope"; }

    std::string message(int code) const override
    {
        switch (static_cast<Errc>(code)) {
        case Errc::backend_unavailable:
            return "no requested backend can run on this kernel";
        case Errc::no_cgroup2:
            return "no cgroup v2 hierarchy is mounted";
        case Errc::no_btf:
            return "the kernel has no BTF";
        case Errc::moved_from:
            return "the session was moved from";
        case Errc::callback_failed:
            return "a callback failed";
        case Errc::internal:
            return "internal error in connscope";
        }
        char buf[128];
        // GNU strerror_r returns a pointer that may or may not be buf.
        return ::strerror_r(code, buf, sizeof(buf));
    }
};

} // namespace

const std::error_category &category() noexcept
{
    static const Category instance;
    return instance;
}

Error::Error(int code, const std::string &message)
    : std::system_error(code, category(), message)
{
}

Error::Error(Errc code, const std::string &message) : Error(static_cast<int>(code), message) {}

} // namespace connscope
