// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "liveness.hpp"

#include "error_impl.hpp"

#include <cstdio>
#include <ctime>

namespace connscope::detail {

namespace {

std::int64_t realtime_ns()
{
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string seconds(std::int64_t ns)
{
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.3f s", static_cast<double>(ns) / 1e9);
    return buf;
}

// Event timestamps come from boot time through an offset measured per drain;
// this slack keeps that measurement's jitter from rejecting a canary.
constexpr std::int64_t clock_slack_ns = 2000000;

} // namespace

Liveness::Liveness(std::chrono::milliseconds interval, Stats &counters, Report report)
    : interval_(interval), counters_(counters), report_(std::move(report)), last_good_ns_(realtime_ns())
{
}

void Liveness::send_round()
{
    round_.clear();
    round_sent_ns_ = realtime_ns();
    round_started_ = std::chrono::steady_clock::now();
    for (int family : canary_.families()) {
        round_.push_back({family, false});
        canary_.send(family); // a failure shows as a missed canary, with the same remedy
        ++counters_.canaries_sent;
    }
}

void Liveness::resend_unseen()
{
    round_started_ = std::chrono::steady_clock::now();
    for (const auto &p : round_)
        if (!p.seen) {
            canary_.send(p.family);
            ++counters_.canaries_sent;
        }
}

bool Liveness::take(const SecuritySocketConnect &event)
{
    const int family = Canary::family_of(event);
    if (!family)
        return false;
    if (static_cast<std::int64_t>(event.process.timestamp_ns) + clock_slack_ns >= round_sent_ns_) {
        const auto *inet = std::get_if<InetEndpoint>(&event.remote_addr);
        if (inet && inet->port == canary_.port())
            for (auto &p : round_)
                if (p.family == family)
                    p.seen = true;
    }
    return true;
}

bool Liveness::round_seen() const
{
    for (const auto &p : round_)
        if (!p.seen)
            return false;
    return true;
}

std::string Liveness::unseen() const
{
    std::string out;
    for (const auto &p : round_)
        if (!p.seen)
            out += (out.empty() ? "" : ", ") + canary_.name(p.family);
    return out;
}

std::int64_t Liveness::round_age_ms() const
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - round_started_)
        .count();
}

void Liveness::check(const std::vector<WatchedLinks> &groups)
{
    if (interval_.count() == 0 || std::chrono::steady_clock::now() - round_started_ < interval_)
        return;
    const std::int64_t now = realtime_ns();
    bool canary_missed = false;
    for (const auto &p : round_) {
        if (p.seen)
            continue;
        canary_missed = true;
        ++counters_.canaries_missed;
        report_({HealthKind::canary_missed, canary_.name(p.family),
                 "the connect of the Session's own to " + canary_.name(p.family) +
                     " did not come back through the ring within " + seconds(now - round_sent_ns_) +
                     ": the backend's hook did not fire for it; attaching the programs again",
                 static_cast<std::uint64_t>(now)});
    }
    bool detached = false;
    for (const auto &g : groups)
        for (const auto &link : *g.links)
            if (!link.attached()) {
                detached = true;
                ++counters_.links_detached;
                report_({HealthKind::link_detached, link.name(),
                         link.name() + " is no longer attached (another process detached its link, "
                                       "e.g. with bpftool link detach); attaching it again",
                         static_cast<std::uint64_t>(now)});
            }
    if (canary_missed || detached)
        repair(groups, canary_missed, now);
    else
        last_good_ns_ = now;
    send_round();
}

void Liveness::repair(const std::vector<WatchedLinks> &groups, bool canary_missed, std::int64_t now_ns)
{
    std::string failed, redone;
    bool connects_affected = canary_missed;
    for (const auto &g : groups) {
        for (auto &link : *g.links) {
            // A canary that did not come back condemns every connect link,
            // attached or not: the kernel no longer runs them.
            if (link.attached() && !(canary_missed && g.carries_connects))
                continue;
            connects_affected = connects_affected || g.carries_connects;
            const std::string why = link.reattach();
            if (why.empty())
                redone += (redone.empty() ? "" : ", ") + link.name();
            else
                failed += (failed.empty() ? "" : "; ") + why;
        }
    }
    const std::uint64_t now = static_cast<std::uint64_t>(now_ns);
    if (!failed.empty()) {
        report_({HealthKind::reattach_failed, failed,
                 "attaching again failed: " + failed + "; the Session tries again in " +
                     seconds(interval_.count() * 1000000LL) + "; connects are not watched until then",
                 now});
        return;
    }
    ++counters_.reattachments;
    std::string gap;
    if (connects_affected) {
        counters_.unwatched_ns += static_cast<std::uint64_t>(now_ns - last_good_ns_);
        gap = "; connects made in the last " + seconds(now_ns - last_good_ns_) +
              " (since the last check that passed) may be missing";
    }
    last_good_ns_ = now_ns;
    report_({HealthKind::reattached, redone, "attached again: " + redone + gap, now});
}

} // namespace connscope::detail
