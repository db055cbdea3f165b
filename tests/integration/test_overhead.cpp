// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Not a test but a measurement, hidden from normal runs ([.]): the cost of a
// UDP socket+connect+close per backend, as a ratio to no hook at all. The
// vm suite runs it on each kernel so the backends the host refuses get a
// figure too. Benchmarks proper live in bench/.
#include <catch2/catch.hpp>

#include "support/harness.hpp"

#include <algorithm>
#include <atomic>
#include <netinet/in.h>
#include <thread>
#include <unistd.h>

using namespace connscope;

namespace {

double ns_per_connect(int loops)
{
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(9);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < loops; ++i) {
        int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
        ::connect(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin));
        ::close(fd);
    }
    std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
    return took.count() / loops;
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

} // namespace

TEST_CASE("per-connect overhead of each backend", "[.overhead]")
{
    const int loops = 2000, rounds = 5;
    std::vector<double> untraced;
    std::vector<std::pair<std::string, std::vector<double>>> traced;
    for (int r = 0; r < rounds; ++r) {
        untraced.push_back(ns_per_connect(loops));
        for (const auto &name : backend_names()) {
            Options o = testing::test_options();
            o.backends = {name};
            o.dns.enabled = false;
            std::uint64_t events = 0;
            o.on_connect = [&events](const SecuritySocketConnect &) { ++events; };
            std::unique_ptr<Session> session;
            try {
                session = std::make_unique<Session>(o);
            } catch (const Error &) {
                continue;
            }
            std::atomic<bool> stop{false};
            std::thread consumer([&] {
                while (!stop)
                    session->poll(std::chrono::milliseconds(5));
            });
            double ns = ns_per_connect(loops);
            stop = true;
            consumer.join();
            auto it = std::find_if(traced.begin(), traced.end(), [&](auto &t) { return t.first == name; });
            if (it == traced.end())
                traced.push_back({name, {ns}});
            else
                it->second.push_back(ns);
        }
    }
    double base = median(untraced);
    std::printf("overhead: untraced %.0f ns per UDP socket+connect+close (median of %d rounds of %d)\n", base,
                rounds, loops);
    for (const auto &[name, v] : traced)
        std::printf("overhead: %-10s %.0f ns  ratio %.3f\n", name.c_str(), median(v), median(v) / base);
    CHECK(base > 0);
}
