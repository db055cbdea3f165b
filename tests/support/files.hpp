// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Temporary directories and whole files, for the configs tests write.
#pragma once

#include <string>

namespace testing {

// A new directory /tmp/connscope-dnstest-XXXXXX; throws if it cannot be made.
std::string make_temp_dir();

// Replaces path's contents with text; throws if that failed.
void write_file(const std::string &path, const std::string &text);

// The whole of path ("" if it cannot be read).
std::string read_file(const std::string &path);

} // namespace testing
