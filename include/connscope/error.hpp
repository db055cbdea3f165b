/**
 * @file error.hpp
 * @brief The one error type of the C++ API, connscope::Error.
 */
#pragma once

#include <connscope/export.h>

#include <string>
#include <system_error>

namespace connscope {

/**
 * Project error codes, 4000 and up (values below 4000 are errno values;
 * invalid options are EINVAL).
 *
 * The C API returns the same numbers negated.
 */
enum class Errc : int {
    backend_unavailable = 4000, /**< No requested backend can run on this kernel. */
    no_cgroup2 = 4001,          /**< No cgroup v2 hierarchy is mounted. */
    no_btf = 4002,              /**< The kernel has no BTF (/sys/kernel/btf/vmlinux). */
    moved_from = 4003,          /**< The Session was moved from and holds nothing. */
    callback_failed = 4004,     /**< A user callback failed. */
    internal = 4005,            /**< A bug in connscope; please report it. */
    hook_not_firing = 4006,     /**< The programs are attached, but the Session's own connect did not come back. */
    /**
     * The cgroup v2 hierarchy is reachable only as a subtree (a cgroup
     * namespace of the process's own), and Options::cgroup_root does not ask
     * for one: programs attached there would miss the rest of the host.
     */
    cgroup_subtree = 4007,
};

/**
 * The error category of connscope codes.
 *
 * Codes below 4000 are errno values and are described with strerror();
 * codes from 4000 are connscope::Errc.
 * @par Thread safety
 * Safe to call from any thread.
 */
CONNSCOPE_API const std::error_category &category() noexcept;

/**
 * An error code of connscope::category() for an Errc value, so that
 * `e.code() == Errc::no_btf` compiles and holds for that error.
 *
 * Codes below 4000 are errno values and compare equal to the matching
 * std::errc condition: `e.code() == std::errc::operation_not_permitted`.
 * @par Thread safety
 * Safe to call from any thread.
 */
CONNSCOPE_API std::error_code make_error_code(Errc code) noexcept;

/**
 * The exception every connscope C++ call throws on failure.
 *
 * code().value() is positive: an errno value or a connscope::Errc. The C API
 * returns the same value negated. what() says what failed, why, and what to do.
 */
class CONNSCOPE_API Error : public std::system_error {
public:
    /**
     * Makes an error.
     * @param code an errno value or a connscope::Errc value, positive.
     * @param message what failed, why, and what to do.
     */
    Error(int code, const std::string &message);
    /** @overload */
    Error(Errc code, const std::string &message);
};

} // namespace connscope

/** @cond */
// Lets an Errc convert to std::error_code and compare with one.
template <>
struct std::is_error_code_enum<connscope::Errc> : std::true_type {};
/** @endcond */
