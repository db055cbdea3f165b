// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Bad options are rejected before anything touches the kernel, with a
// message that says what is wrong and what would be right.
#include <catch2/catch.hpp>

#include <connscope/error.hpp>
#include <connscope/session.hpp>

#include <cerrno>

using namespace connscope;

namespace {

std::string rejection(Options o)
{
    try {
        Session s(std::move(o));
    } catch (const Error &e) {
        CHECK(e.code().value() == EINVAL);
        CHECK(e.code().category() == category());
        return e.what();
    }
    FAIL("the options were accepted");
    return {};
}

} // namespace

TEST_CASE("backend names are checked and the valid ones listed")
{
    CHECK(parse_backend_list("auto") == std::vector<std::string>{"auto"});
    CHECK(parse_backend_list("fentry, cgroup") == std::vector<std::string>{"fentry", "cgroup"});
    CHECK_THROWS_WITH(parse_backend_list("ebpf"), Catch::Contains("unknown backend 'ebpf'") &&
                                                      Catch::Contains("fentry, lsm, kprobe, cgroup, tracepoint"));
    CHECK_THROWS_WITH(parse_backend_list("cgroup,,lsm"), Catch::Contains("empty backend name"));
    Options o;
    o.backends = {"nope"};
    CHECK_THAT(rejection(o), Catch::Contains("valid backends are auto, fentry, lsm"));
    o.backends = {};
    CHECK_THAT(rejection(o), Catch::Contains("no backend given"));
}

TEST_CASE("ring sizes must be power-of-two multiples of the page size")
{
    Options o;
    o.ring_size = 5000;
    CHECK_THAT(rejection(o), Catch::Contains("not a power-of-two multiple of the page size") &&
                                 Catch::Contains("nearest valid size is 4096"));
    o.ring_size = 3 << 20;
    CHECK_THAT(rejection(o), Catch::Contains("nearest valid size is 4194304"));
    o.ring_size = 0;
    CHECK_THAT(rejection(o), Catch::Contains("nearest valid size is 4096"));
    o.ring_size = 2048;
    CHECK_THAT(rejection(o), Catch::Contains("nearest valid size is 4096"));
}

TEST_CASE("latency and DNS settings are range-checked")
{
    Options o;
    o.max_latency = std::chrono::milliseconds(0);
    CHECK_THAT(rejection(o), Catch::Contains("max_latency 0 ms is out of range"));
    o = Options{};
    o.dns.ports = {};
    CHECK_THAT(rejection(o), Catch::Contains("DNS ports: give 1 to 16 ports"));
    o.dns.ports = {0};
    CHECK_THAT(rejection(o), Catch::Contains("DNS port 0"));
    o.dns.ports = {53};
    o.dns.payload_max = 10;
    CHECK_THAT(rejection(o), Catch::Contains("DNS payload bound 10 is out of range"));
}
