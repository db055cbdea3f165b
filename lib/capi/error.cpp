// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The C API's error channel: codes, connscope_strerror(), connscope_last_error().
#include "capi.hpp"

#include "error_impl.hpp"

#include <connscope/version.h>

#include <cstdio>
#include <cstring>

namespace connscope::capi {

namespace {

// The message of the last failure on this thread. When storing it fails for
// lack of memory, last_static points to a fixed message instead.
thread_local std::string last_message;
thread_local const char *last_static = "";

} // namespace

int fail(int code, const char *message) noexcept
{
    try {
        last_message.assign(message ? message : "");
        last_static = nullptr;
    } catch (...) {
        last_static = "out of memory while recording an error";
    }
    return code;
}

void check_input_struct(const void *ptr, std::size_t sz, std::size_t known, const char *type_name)
{
    if (sz < sizeof(std::size_t))
        throw Error(EINVAL, std::string("struct ") + type_name + ": sz is " + std::to_string(sz) +
                                "; set it to sizeof(struct " + type_name + ")");
    const auto *bytes = static_cast<const unsigned char *>(ptr);
    for (std::size_t i = known; i < sz; ++i) {
        if (bytes[i] != 0)
            throw Error(EINVAL, std::string("struct ") + type_name + ": byte " + std::to_string(i) +
                                    " is set, but this connscope " CONNSCOPE_VERSION_STRING
                                    " knows only the first " + std::to_string(known) +
                                    " bytes; the program was built for a newer library: "
                                    "upgrade libconnscope or leave the new fields zero");
    }
}

void prepare_output_struct(void *ptr, std::size_t sz, std::size_t known, const char *type_name)
{
    if (sz < sizeof(std::size_t))
        throw Error(EINVAL, std::string("struct ") + type_name + ": sz is " + std::to_string(sz) +
                                "; set it to sizeof(struct " + type_name + ")");
    if (sz > known)
        std::memset(static_cast<unsigned char *>(ptr) + known, 0, sz - known);
}

void null_argument(const char *function, const char *argument)
{
    throw Error(EINVAL, std::string(function) + ": " + argument + " is NULL");
}

} // namespace connscope::capi

extern "C" {

CONNSCOPE_API const char *connscope_version(void) noexcept
{
    return CONNSCOPE_VERSION_STRING;
}

CONNSCOPE_API const char *connscope_strerror(int code) noexcept
{
    if (code < 0)
        code = code == -2147483647 - 1 ? 0 : -code;
    if (code == 0)
        return "Success";
    if (const char *s = connscope::detail::errc_description(code))
        return s;
    return connscope::detail::errno_description(code);
}

CONNSCOPE_API const char *connscope_last_error(void) noexcept
{
    using namespace connscope::capi;
    return last_static ? last_static : last_message.c_str();
}

} // extern "C"
