// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The liveness watch's judgement, without a kernel: a round whose canaries
// do not come back is reported and repaired; one whose canaries come back
// (here handed in as the decoder would) passes quietly.
#include <catch2/catch.hpp>

#include "liveness.hpp"

#include <arpa/inet.h>
#include <thread>
#include <unistd.h>

using namespace connscope;

namespace {

// What the decoder makes of this process's canary connect to 127.0.0.1:port.
SecuritySocketConnect canary_record(std::uint16_t port, std::uint64_t timestamp_ns)
{
    SecuritySocketConnect ev;
    ev.process.pid = static_cast<std::uint32_t>(::getpid());
    ev.process.timestamp_ns = timestamp_ns;
    ev.type = SocketType::dgram;
    const std::uint8_t loopback[4] = {127, 0, 0, 1};
    ev.remote_addr = InetEndpoint{IpAddress::v4(loopback), port, 0, 0};
    return ev;
}

std::uint64_t now_ns()
{
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

} // namespace

TEST_CASE("a canary that does not come back is reported, repaired and its gap counted", "[liveness]")
{
    Stats counters;
    std::vector<HealthEvent> reports;
    detail::Liveness watch(std::chrono::milliseconds(30), counters,
                           [&reports](const HealthEvent &e) { reports.push_back(e); });
    watch.send_round();
    CHECK(counters.canaries_sent == watch.canary().families().size());
    CHECK_FALSE(watch.round_seen());
    CHECK(watch.unseen().find("IPv4 canary (127.0.0.1:" + std::to_string(watch.canary().port()) + ")") == 0);

    std::this_thread::sleep_for(std::chrono::milliseconds(40));
    watch.check({});
    REQUIRE(reports.size() == watch.canary().families().size() + 1);
    CHECK(reports[0].kind == HealthKind::canary_missed);
    CHECK(reports[0].message.find("did not come back through the ring") != std::string::npos);
    CHECK(reports.back().kind == HealthKind::reattached);
    CHECK(reports.back().message.find("may be missing") != std::string::npos);
    CHECK(counters.canaries_missed == watch.canary().families().size());
    CHECK(counters.reattachments == 1);
    CHECK(counters.unwatched_ns > 0);

    // The next round's canaries come back: nothing to report.
    reports.clear();
    const std::uint64_t sent = now_ns();
    CHECK(watch.take(canary_record(watch.canary().port(), sent)));
    if (watch.canary().families().size() == 2) {
        SecuritySocketConnect v6 = canary_record(watch.canary().port(), sent);
        std::get<InetEndpoint>(v6.remote_addr).ip = *IpAddress::parse("::1");
        CHECK(watch.take(v6));
    }
    CHECK(watch.round_seen());
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
    const auto gap = counters.unwatched_ns;
    watch.check({});
    CHECK(reports.empty());
    CHECK(counters.unwatched_ns == gap);
}

TEST_CASE("only this process's connects to a canary port are canaries", "[liveness]")
{
    Stats counters;
    detail::Liveness watch(std::chrono::milliseconds(0), counters, [](const HealthEvent &) {});
    const std::uint16_t port = watch.canary().port();
    auto other_pid = canary_record(port, now_ns());
    other_pid.process.pid += 1;
    CHECK_FALSE(watch.take(other_pid));
    auto other_port = canary_record(static_cast<std::uint16_t>(port + 1), now_ns());
    CHECK_FALSE(watch.take(other_port));
    auto tcp = canary_record(port, now_ns());
    tcp.type = SocketType::stream;
    CHECK_FALSE(watch.take(tcp));
    // A canary older than the round is dropped, but does not count for it.
    watch.send_round();
    CHECK(watch.take(canary_record(port, 1)));
    CHECK_FALSE(watch.round_seen());
}
