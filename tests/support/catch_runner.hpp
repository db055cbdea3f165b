// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The test programs' main (support/catch_runner.cpp) runs Catch2 after asking
// the program whether it can: a program with preconditions (root, a backend,
// dnsmasq) defines before_tests; the others get the default, which says run.
#pragma once

namespace testing {

// An exit status to stop with at once (77: skip, having printed why), or -1
// to run the test cases.
int before_tests();

} // namespace testing
