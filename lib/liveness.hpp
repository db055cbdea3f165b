// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The Session's proof that it is watching: canary connects of its own that
// must come back through the ring (at start, and every liveness_interval),
// and a check that every link it owns is still attached. What goes missing
// is reported as a HealthEvent, counted in Stats and attached again.
#pragma once

#include <connscope/session.hpp>

#include "kernel/canary.hpp"
#include "kernel/links.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

namespace connscope::detail {

// A group of links the watch checks, and whether connects depend on it.
struct WatchedLinks {
    OwnedLinks *links;
    bool carries_connects; // the backend's links; not the DNS capture's
};

class Liveness {
public:
    using Report = std::function<void(const HealthEvent &)>;

    Liveness(std::chrono::milliseconds interval, Stats &counters, Report report);

    const Canary &canary() const { return canary_; }
    // Starts a round: one canary connect per family. A canary that cannot be
    // sent at all (EMFILE) counts as sent and will be missed.
    void send_round();
    // Sends the round's unseen canaries again; one that comes back counts
    // from the round's start.
    void resend_unseen();
    // Whether this connect is a canary of any Session of this process (the
    // caller drops it); one of this round's is noted as seen.
    bool take(const SecuritySocketConnect &event);
    bool round_seen() const;
    // "IPv4 canary (127.0.0.1:40123)" for each family this round lacks.
    std::string unseen() const;
    std::int64_t round_age_ms() const;

    // Called after each drain: when the interval is up, judges the round,
    // checks the links, repairs, and starts the next round.
    void check(const std::vector<WatchedLinks> &groups);

private:
    struct Pending {
        int family;
        bool seen;
    };
    void repair(const std::vector<WatchedLinks> &groups, bool canary_missed, std::int64_t now_ns);

    Canary canary_;
    std::chrono::milliseconds interval_;
    Stats &counters_;
    Report report_;
    std::vector<Pending> round_;
    std::int64_t round_sent_ns_ = 0;  // CLOCK_REALTIME, as event timestamps are
    std::chrono::steady_clock::time_point round_started_;
    std::int64_t last_good_ns_ = 0;   // the last check that passed
};

} // namespace connscope::detail
