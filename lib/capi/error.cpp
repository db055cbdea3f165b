// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The C API's error channel: codes, connscope_strerror(), connscope_last_error().
#include "capi.hpp"

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

namespace {

const char *project_error(int code) noexcept
{
    switch (code) {
    case CONNSCOPE_EBACKEND: return "no requested backend can run on this kernel";
    case CONNSCOPE_ENOCGROUP2: return "no cgroup v2 hierarchy is mounted";
    case CONNSCOPE_ENOBTF: return "the kernel has no BTF";
    case CONNSCOPE_EMOVED: return "the session holds nothing";
    case CONNSCOPE_ECALLBACK: return "a callback failed";
    case CONNSCOPE_EINTERNAL: return "internal error in connscope";
    default: return nullptr;
    }
}

} // namespace

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
    if (const char *s = project_error(code))
        return s;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    if (const char *s = strerrordesc_np(code))
        return s;
    thread_local char unknown[48];
    std::snprintf(unknown, sizeof(unknown), "Unknown error %d", code);
    return unknown;
#else
    return std::strerror(code); // musl and the BSDs return static text
#endif
}

CONNSCOPE_API const char *connscope_last_error(void) noexcept
{
    using namespace connscope::capi;
    return last_static ? last_static : last_message.c_str();
}

} // extern "C"
