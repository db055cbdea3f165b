// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// connscope::Error compares with Errc values and with errno conditions.
#include <catch2/catch.hpp>

#include <connscope/error.hpp>
#include <connscope/version.h>

#include <cerrno>
#include <string>
#include <system_error>

using namespace connscope;

TEST_CASE("an Error compares equal to its Errc and to the matching std::errc")
{
    const Error btf(Errc::no_btf, "no BTF");
    CHECK(btf.code() == Errc::no_btf);
    CHECK(btf.code() != Errc::no_cgroup2);
    CHECK(btf.code() != std::errc::operation_not_permitted);
    CHECK(btf.code().message() == "the kernel has no BTF");

    const Error perm(EPERM, "missing CAP_BPF");
    CHECK(perm.code() == std::errc::operation_not_permitted);
    CHECK(perm.code() != std::errc::invalid_argument);
    CHECK(perm.code() != Errc::backend_unavailable);
    CHECK(perm.code().category() == category());
    CHECK(perm.code().message() == "Operation not permitted");

    const std::error_code made = Errc::internal; // through make_error_code
    CHECK(made.value() == 4005);
    CHECK(made.category() == category());
    CHECK(std::string(made.category().name()) == "connscope");
}

TEST_CASE("CONNSCOPE_VERSION_AT_LEAST compares with these headers' version")
{
    CHECK(CONNSCOPE_VERSION_AT_LEAST(CONNSCOPE_VERSION_MAJOR, CONNSCOPE_VERSION_MINOR, CONNSCOPE_VERSION_PATCH));
    CHECK(CONNSCOPE_VERSION_AT_LEAST(0, 0, 0));
    CHECK(CONNSCOPE_VERSION_AT_LEAST(0, 2, 0));
    CHECK_FALSE(CONNSCOPE_VERSION_AT_LEAST(CONNSCOPE_VERSION_MAJOR, CONNSCOPE_VERSION_MINOR,
                                           CONNSCOPE_VERSION_PATCH + 1));
    CHECK_FALSE(CONNSCOPE_VERSION_AT_LEAST(CONNSCOPE_VERSION_MAJOR, CONNSCOPE_VERSION_MINOR + 1, 0));
    CHECK_FALSE(CONNSCOPE_VERSION_AT_LEAST(CONNSCOPE_VERSION_MAJOR + 1, 0, 0));
#if !CONNSCOPE_VERSION_AT_LEAST(0, 2, 0)
    FAIL("the preprocessor disagrees");
#endif
}
