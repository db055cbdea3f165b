// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Catch2's implementation and the one main of every test program, compiled
// once: compiled into each program it was a third of a test build's time, and
// far more under the sanitizers.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "catch_runner.hpp"

// A program without preconditions runs its test cases.
__attribute__((weak)) int testing::before_tests() { return -1; }

int main(int argc, char **argv)
{
    if (const int status = testing::before_tests(); status >= 0)
        return status;
    return Catch::Session().run(argc, argv);
}
