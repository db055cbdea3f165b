// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The backend table is the one description of the backends: the names users
// give, the programs of the connect object, and the docs' table come from it.
#include <catch2/catch.hpp>

#include <connscope/session.hpp>

#include "kernel/backend.hpp"

#include "connscope_connect.skel.h"

#include <bpf/libbpf.h>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

using namespace connscope;

TEST_CASE("backend_names() lists the table in auto's order")
{
    const auto &names = backend_names();
    const auto &table = detail::backend_table();
    REQUIRE(names.size() == table.size());
    for (std::size_t i = 0; i < table.size(); ++i) {
        CHECK(names[i] == table[i].name);
        CHECK(detail::find_backend(names[i]) == &table[i]);
        CHECK_FALSE(table[i].variants.empty());
        CHECK(table[i].remedy != nullptr);
    }
    CHECK(detail::find_backend("auto") == nullptr);
    CHECK(names == std::vector<std::string>{"fentry", "lsm", "kprobe", "cgroup", "tracepoint"});
}

TEST_CASE("every program the table names is in the connect object, and every program is named")
{
    // Opening parses the ELF only; nothing is loaded, no privilege needed.
    connscope_connect_bpf *skel = connscope_connect_bpf__open();
    REQUIRE(skel != nullptr);
    std::set<std::string> named;
    for (const auto &b : detail::backend_table())
        for (const auto &v : b.variants)
            for (const auto &p : v.programs) {
                INFO(b.name << ": " << p.program);
                CHECK(bpf_object__find_program_by_name(skel->obj, p.program) != nullptr);
                named.insert(p.program);
            }
    for (const auto &p : detail::outcome_program_table()) {
        INFO("outcome program: " << p.program);
        CHECK(bpf_object__find_program_by_name(skel->obj, p.program) != nullptr);
        named.insert(p.program);
    }
    bpf_program *prog;
    bpf_object__for_each_program(prog, skel->obj)
    {
        INFO("program in bpf/ that no backend loads: " << bpf_program__name(prog));
        CHECK(named.count(bpf_program__name(prog)) == 1);
    }
    connscope_connect_bpf__destroy(skel);
}

TEST_CASE("docs/guide.md carries the backend table as the library describes it")
{
    const char *root = std::getenv("CONNSCOPE_SOURCE_ROOT");
    REQUIRE(root != nullptr);
    std::ifstream in(std::string(root) + "/docs/guide.md");
    REQUIRE(in);
    std::stringstream text;
    text << in.rdbuf();
    const std::string table = detail::backend_table_markdown();
    INFO("paste this table into docs/guide.md:\n" << table);
    CHECK(text.str().find(table) != std::string::npos);
}
