// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The one place error codes become text, for the C++ category, the C API's
// connscope_strerror() and the library's own messages.
#pragma once

#include <string>

namespace connscope::detail {

// The kernel's internal ENOTSUPP: bpf() returns it (for example for a
// refused trampoline) and libc has no name for it.
constexpr int kernel_enotsupp = 524;

// The description of a connscope::Errc value, or nullptr if code is not one.
const char *errc_description(int code) noexcept;

// "Operation not permitted" for EPERM; never nullptr, for any value.
const char *errno_description(int err) noexcept;

// "EPERM: Operation not permitted"; the sign of err is ignored.
std::string errno_text(int err);

} // namespace connscope::detail
