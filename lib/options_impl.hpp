// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Session options checked before anything touches the kernel.
#pragma once

#include <connscope/session.hpp>

#include <string>
#include <vector>

namespace connscope::detail {

struct BackendDescription;

// Throws Error(EINVAL) naming the option, its value and the valid range.
void validate(const Options &options);

// The backends to try, in order: "auto" expanded, repeats dropped (each
// keeps its first place). Throws Error(EINVAL) for an unknown name.
std::vector<const BackendDescription *> expand_backends(const std::vector<std::string> &names);

std::size_t page_size();

} // namespace connscope::detail
