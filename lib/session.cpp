// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The Session wires the parts together and dispatches: the backend and the
// DNS capture (kernel/), one ring reader (kernel/ring), the decoder and the
// DNS feed (records/), the correlator (dns/), and the user's callbacks.
#include <connscope/error.hpp>
#include <connscope/session.hpp>

#include "dns/name_list.hpp"
#include "error_impl.hpp"
#include "kernel/backend.hpp"
#include "kernel/container_ids.hpp"
#include "kernel/dns_capture.hpp"
#include "kernel/filters.hpp"
#include "kernel/host.hpp"
#include "kernel/log.hpp"
#include "kernel/ring.hpp"
#include "liveness.hpp"
#include "options_impl.hpp"
#include "records/decoder.hpp"
#include "records/dns_feed.hpp"
#include "records/text.hpp"

#include "connscope_connect.skel.h"

#include <algorithm>
#include <bpf/libbpf.h>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>

namespace connscope {

// Hidden: a nested class of an exported one would otherwise be exported too.
struct __attribute__((visibility("hidden"))) Session::Impl {
    Options options;
    BackendInfo info;
    detail::AttachedBackend backend;
    std::unique_ptr<detail::DnsCapture> dns_capture;
    std::unique_ptr<detail::RingReader> ring;
    std::unique_ptr<detail::Liveness> liveness;
    // Until the start-up proof is in, records are kept here, in ring order,
    // and handed to the callbacks by the first poll(): none is delivered
    // from inside the constructor.
    bool starting = true;
    std::vector<unsigned char> held;
    std::vector<std::pair<std::size_t, std::size_t>> held_records; // offset, size
    std::size_t held_next = 0;
    std::shared_ptr<DnsCorrelator> correlator;
    // The correlator's allocation-free lookup, when it has one (the default).
    detail::NameListLookup *name_lookup = nullptr;
    std::shared_ptr<const detail::CgroupScope> cgroup;
    // Container ids by cgroup id, from a walk of the hierarchy under cgroup.
    std::unique_ptr<detail::ContainerIds> containers;
    Stats counters; // the user-side counts; kernel counts are added in stats()
    detail::DnsFeed dns_feed{counters};
    std::int64_t epoch_offset_ns = 0;
    const detail::LogScope *log_scope = nullptr; // while the constructor runs
    bool dispatching = false;
    bool break_requested = false;
    int break_result = 0;
    // Reused between records, strings and vectors included, so that a
    // steady state of decoding and dispatch allocates nothing.
    SecuritySocketConnect connect_event;
    NetTcpConnect tcp_event;
    ConnectOutcome outcome_event;
    std::string spare_unix_name;
    detail::NameList tcp_names;
    std::vector<detail::WatchedLinks> watched;
    // Every event gets the next number, delivered to a callback or not.
    std::uint64_t sequence = 0;
    // The connect ids of the latest canaries: their outcomes are not events
    // either. A canary's outcome follows it at once (UDP), so a few suffice.
    std::array<std::uint64_t, 8> canary_ids{};
    std::size_t canary_next = 0;

    explicit Impl(Options opts);
    void start_backend(const std::vector<const detail::BackendDescription *> &order, bool forced,
                       const detail::LoadSettings &s);
    void prove_watching();
    void report_health(const HealthEvent &event);
    int handle_record(const void *data, std::size_t size);
    int replay_held();
    void handle_connect(const void *data, std::size_t size);
    void handle_outcome(const void *data, std::size_t size);
    bool take_canary(const SecuritySocketConnect &event);
    int drain();
    template <typename Event>
    void deliver(const std::function<void(const Event &)> &callback, const Event &event);
};

Session::Impl::Impl(Options opts) : options(std::move(opts))
{
    const detail::LogScope log(options.on_log, options.log_level);
    log_scope = &log;
    detail::validate(options);
    const auto order = detail::expand_backends(options.backends);
    const bool forced = order.size() == 1;

    if (!host::kernel_has_btf())
        throw Error(Errc::no_btf, "starting a session: /sys/kernel/btf/vmlinux is missing, so the BPF programs "
                                  "cannot be adapted to this kernel (CO-RE); use a kernel built with "
                                  "CONFIG_DEBUG_INFO_BTF=y (Linux 5.8 or later)");
    auto missing = host::missing_capabilities();
    if (!missing.empty())
        throw Error(EPERM, "starting a session: missing " + missing +
                               "; run as root or grant CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN");

    detail::LoadSettings settings;
    // Following each connect costs on every TCP state change; only a Session
    // that takes outcomes pays for it. Refused attempts are reported anyway.
    settings.outcomes = options.outcomes && options.on_outcome;
    settings.refused_attempts = options.outcomes;
    settings.ring_size = options.ring_size;
    settings.wakeup_watermark = options.ring_size / 4;
    auto scope = detail::find_cgroup_scope(options.cgroup_root);
    const bool wants_cgroup =
        options.dns.enabled || std::any_of(order.begin(), order.end(), [](const detail::BackendDescription *b) {
            return std::string(b->name) == "cgroup";
        });
    // A subtree watched by mistake misses the rest of the host without a
    // word: refuse, unless nothing needs the cgroup programs.
    if (scope.subtree_only && wants_cgroup)
        throw Error(Errc::cgroup_subtree, "starting a session: " + scope.why);
    if (!scope.scope && forced && std::string(order[0]->name) == "cgroup")
        throw Error(Errc::no_cgroup2, "starting the cgroup backend: " + scope.why + "; or use another backend");
    settings.cgroup = scope.scope;
    settings.cgroup_missing = scope.why;
    cgroup = scope.scope;
    containers = std::make_unique<detail::ContainerIds>(cgroup ? cgroup->fd : -1);
    if (cgroup) {
        info.cgroup_root = cgroup->private_mount ? "(private mount)" : cgroup->path;
        info.cgroup_scope = cgroup->description;
    } else {
        info.cgroup_scope = "none: " + scope.why;
    }
    detail::LogScope::emit(cgroup ? LogLevel::info : LogLevel::warning, "cgroup programs attach to " +
                                                                           info.cgroup_scope);
    settings.before_attach = [this](connscope_connect_bpf *skel) {
        detail::apply_filters(skel, options.filters, cgroup.get(), liveness->canary().port());
    };
    liveness = std::make_unique<detail::Liveness>(options.liveness_interval, counters,
                                                  [this](const HealthEvent &e) { report_health(e); });
    start_backend(order, forced, settings);
    if (options.dns.enabled) {
        dns_capture = std::make_unique<detail::DnsCapture>(options.dns, settings,
                                                           bpf_map__fd(backend.skel->maps.events_rb),
                                                           bpf_map__fd(backend.skel->maps.lost_counts));
        info.dns = dns_capture->status();
        detail::LogScope::emit(dns_capture->on() ? LogLevel::info : LogLevel::warning, "DNS capture " + info.dns);
        if (options.dns.correlator) {
            correlator = options.dns.correlator;
        } else {
            // The host's own names get the reserve no other namespace can take.
            DnsCacheOptions cache = options.dns.cache;
            if (!cache.host_netns)
                cache.host_netns = host::own_netns_inode();
            // Budgets by owner, from the record being fed (dns_budget_key).
            if (!cache.budget_of)
                cache.budget_of = [feed = &dns_feed](std::uint64_t netns) { return feed->budget_key(netns); };
            correlator = make_default_correlator(cache);
        }
    } else {
        info.dns = "off (disabled by the options)";
        correlator = options.dns.correlator;
    }
    name_lookup = dynamic_cast<detail::NameListLookup *>(correlator.get());
    ring = std::make_unique<detail::RingReader>(
        bpf_map__fd(backend.skel->maps.events_rb),
        [](void *ctx, void *data, std::size_t size) { return static_cast<Impl *>(ctx)->handle_record(data, size); },
        this, options.max_latency);
    prove_watching();
    log_scope = nullptr;
}

void Session::Impl::prove_watching()
{
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + options.startup_timeout;
    // A canary may be lost to a full ring (counted); a new one goes every so often.
    constexpr std::int64_t resend_ms = 250;
    liveness->send_round();
    while (!liveness->round_seen()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
        if (left <= 0) {
            throw Error(Errc::hook_not_firing,
                        "starting backend " + info.name + ": its programs are attached (" + backend.detail +
                            "), but the Session's own connect to " + liveness->unseen() +
                            " did not come back through the ring within " +
                            std::to_string(options.startup_timeout.count()) +
                            " ms, so connects would go unreported; try another backend (--backend), check "
                            "that no other tool detaches BPF programs, and see whether the program runs "
                            "(sysctl kernel.bpf_stats_enabled=1, then bpftool prog show: run_cnt)");
        }
        ring->wait(static_cast<int>(std::min<std::int64_t>(left, options.max_latency.count())));
        ring->clear_timer();
        epoch_offset_ns = host::boot_to_realtime_offset_ns();
        const int n = ring->consume();
        if (n < 0)
            throw Error(-n, "reading the ring buffer: " + detail::errno_text(-n));
        if (!liveness->round_seen() && liveness->round_age_ms() >= resend_ms)
            liveness->resend_unseen();
    }
    starting = false;
    detail::LogScope::emit(LogLevel::info, "backend " + info.name + " proven: the Session's own connects came back "
                                           "through the ring");
}

void Session::Impl::report_health(const HealthEvent &event)
{
    detail::LogScope::emit(LogLevel::warning, "health: " + event.message);
    HealthEvent numbered = event;
    numbered.sequence = ++sequence;
    if (options.on_health)
        deliver(options.on_health, numbered);
}

void Session::Impl::start_backend(const std::vector<const detail::BackendDescription *> &order, bool forced,
                                  const detail::LoadSettings &settings)
{
    std::string refused, refused_short;
    for (const auto *b : order) {
        const std::string name = b->name;
        try {
            // With more backends to try, a refusal is expected: libbpf's
            // warnings about it are detail, the verdict below is the news.
            const detail::LogScope probing(*log_scope, forced ? LogLevel::warning : LogLevel::info);
            backend = detail::attach_backend(*b, settings);
        } catch (const detail::BackendFailure &f) {
            info.tried.push_back({name, false, f.what()});
            detail::LogScope::emit(forced ? LogLevel::error : LogLevel::info,
                                   "backend " + name + " unavailable: " + f.what());
            refused += (refused.empty() ? "" : "; ") + name + ": " + f.what();
            const char *err = strerrorname_np(f.err);
            refused_short += (refused_short.empty() ? "" : ", ") + name + " (" + (err ? err : "error") + ")";
            continue;
        }
        info.tried.push_back({name, true, {}});
        info.name = name;
        info.gaps = backend.gaps;
        if (forced)
            info.reason = "requested; uses " + backend.detail;
        else if (refused.empty())
            info.reason = "first in the preference order; uses " + backend.detail;
        else
            info.reason = "uses " + backend.detail + "; unavailable before it: " + refused_short +
                          " (reasons in BackendInfo::tried, or connscope-trace --list-backends)";
        detail::LogScope::emit(LogLevel::info, "backend " + name + ": " + info.reason);
        for (const auto &gap : info.gaps)
            detail::LogScope::emit(LogLevel::info, "backend " + name + " cannot see " + gap);
        return;
    }
    throw Error(Errc::backend_unavailable,
                "no backend could start (tried " + std::to_string(order.size()) + "): " + refused);
}

template <typename Event>
void Session::Impl::deliver(const std::function<void(const Event &)> &callback, const Event &event)
{
    try {
        callback(event);
    } catch (...) {
        // A callback's failure must not take the agent down; it is counted.
        ++counters.callback_errors;
    }
}

int Session::Impl::handle_record(const void *data, std::size_t size)
{
    if (starting) {
        if (detail::record_type(data, size) == CS_REC_CONNECT &&
            detail::decode_connect(data, size, epoch_offset_ns, connect_event, &spare_unix_name) &&
            take_canary(connect_event))
            return 0;
        const auto *bytes = static_cast<const unsigned char *>(data);
        held_records.emplace_back(held.size(), size);
        held.insert(held.end(), bytes, bytes + size);
        return 0;
    }
    switch (detail::record_type(data, size)) {
    case CS_REC_CONNECT:
        handle_connect(data, size);
        break;
    case CS_REC_DNS:
        dns_feed.record(data, size, epoch_offset_ns, correlator.get());
        break;
    case CS_REC_OUTCOME:
        handle_outcome(data, size);
        break;
    default:
        ++counters.decode_errors;
        break;
    }
    // A negative return stops ring_buffer__consume(); the result is kept aside.
    return break_requested ? -ECANCELED : 0;
}

void Session::Impl::handle_connect(const void *data, std::size_t size)
{
    SecuritySocketConnect &ev = connect_event;
    if (!detail::decode_connect(data, size, epoch_offset_ns, ev, &spare_unix_name)) {
        ++counters.decode_errors;
        return;
    }
    if (take_canary(ev))
        return; // a canary: the Session's own proof, not an event
    // Here, not in the decoder: it reads the cgroup hierarchy (and may walk it).
    ev.process.container_id = containers->of(ev.process.cgroup_id);
    ++counters.events;
    ev.sequence = ++sequence;
    if (options.on_connect)
        deliver(options.on_connect, ev);
    // A break_poll() from on_connect takes effect after this record: its
    // NetTcpConnect is part of the same event and is still delivered.
    if (!options.on_tcp_connect || ev.type != SocketType::stream)
        return;
    const auto *inet = std::get_if<InetEndpoint>(&ev.remote_addr);
    if (!inet)
        return;
    NetTcpConnect &tcp_ev = tcp_event;
    tcp_ev.process = ev.process;
    tcp_ev.sockfd = ev.sockfd;
    tcp_ev.via = ev.via;
    tcp_ev.connect_id = ev.connect_id;
    tcp_ev.sequence = ++sequence;
    detail::assign_ip(tcp_ev.dst_ip, inet->ip);
    tcp_ev.dst_port = inet->port;
    if (name_lookup) {
        tcp_names.start(tcp_ev.results);
        name_lookup->lookup_into(ev.process.ns.net, inet->ip.unmapped(), ev.process.timestamp_ns, tcp_names);
        tcp_names.finish();
    } else if (correlator) {
        tcp_ev.results = correlator->lookup(ev.process.ns.net, inet->ip.unmapped(), ev.process.timestamp_ns);
    } else {
        tcp_ev.results.clear();
    }
    ++counters.tcp_events;
    deliver(options.on_tcp_connect, tcp_ev);
}

bool Session::Impl::take_canary(const SecuritySocketConnect &event)
{
    if (!liveness->take(event))
        return false;
    canary_ids[canary_next++ % canary_ids.size()] = event.connect_id;
    return true;
}

void Session::Impl::handle_outcome(const void *data, std::size_t size)
{
    ConnectOutcome &out = outcome_event;
    if (!detail::decode_outcome(data, size, epoch_offset_ns, out)) {
        ++counters.decode_errors;
        return;
    }
    if (std::find(canary_ids.begin(), canary_ids.end(), out.connect_id) != canary_ids.end())
        return;
    ++counters.outcomes;
    out.sequence = ++sequence;
    if (options.on_outcome)
        deliver(options.on_outcome, out);
}

int Session::Impl::replay_held()
{
    int n = 0;
    while (held_next < held_records.size() && !break_requested) {
        const auto [offset, size] = held_records[held_next++];
        handle_record(held.data() + offset, size);
        ++n;
    }
    if (held_next == held_records.size() && !held_records.empty()) {
        held_next = 0;
        held_records = {};
        held = {};
    }
    return n;
}

int Session::Impl::drain()
{
    if (dispatching)
        throw Error(EDEADLK, "poll() or consume() called from inside a callback; return from the callback "
                             "first (use break_poll() to stop the current poll)");
    epoch_offset_ns = host::boot_to_realtime_offset_ns();
    break_requested = false;
    dispatching = true;
    int n = replay_held();
    if (!break_requested) {
        const int consumed = ring->consume();
        n = consumed < 0 ? consumed : n + consumed;
    }
    if (!break_requested && n >= 0) {
        if (watched.empty()) {
            watched.push_back({&backend.links, true});
            if (dns_capture)
                watched.push_back({&dns_capture->links(), false});
        }
        liveness->check(watched);
    }
    dispatching = false;
    if (break_requested)
        return break_result;
    if (n < 0)
        throw Error(-n, "reading the ring buffer: " + detail::errno_text(-n));
    return n;
}

Session::Session(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Session::~Session() = default;
Session::Session(Session &&) noexcept = default;
Session &Session::operator=(Session &&) noexcept = default;

namespace {
[[noreturn]] void moved_from()
{
    throw Error(Errc::moved_from, "using a Session that was moved from: it holds nothing; use the Session "
                                  "it was moved to");
}
} // namespace

int Session::poll(std::chrono::milliseconds timeout)
{
    if (!impl_)
        moved_from();
    if (impl_->dispatching)
        return impl_->drain(); // throws EDEADLK
    using clock = std::chrono::steady_clock;
    const bool forever = timeout.count() < 0;
    const auto deadline = clock::now() + (forever ? std::chrono::milliseconds(0) : timeout);
    for (;;) {
        int wait_ms = 0;
        if (forever) {
            wait_ms = -1;
        } else {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
            wait_ms = left.count() > 0 ? static_cast<int>(std::min<long long>(left.count(), INT32_MAX)) : 0;
        }
        const int n = impl_->ring->wait(wait_ms);
        impl_->ring->clear_timer();
        int handled = impl_->drain();
        // break_requested stays set after drain(): a break_poll(0) must stop too.
        if (handled != 0 || impl_->break_requested || n < 0 || wait_ms == 0)
            return handled;
    }
}

int Session::consume()
{
    if (!impl_)
        moved_from();
    impl_->ring->clear_timer();
    return impl_->drain();
}

int Session::fd() const
{
    if (!impl_)
        moved_from();
    return impl_->ring->epoll_fd();
}

void Session::break_poll(int result)
{
    if (!impl_)
        moved_from();
    impl_->break_requested = true;
    impl_->break_result = result;
}

void Session::set_filters(const Filters &filters)
{
    if (!impl_)
        moved_from();
    const detail::LogScope log(impl_->options.on_log, impl_->options.log_level);
    detail::apply_filters(impl_->backend.skel, filters, impl_->cgroup.get(), impl_->liveness->canary().port());
    impl_->options.filters = filters;
}

const BackendInfo &Session::backend() const
{
    if (!impl_)
        moved_from();
    return impl_->info;
}

Stats Session::stats() const
{
    if (!impl_)
        moved_from();
    Stats s = impl_->counters;
    const int lost_fd = bpf_map__fd(impl_->backend.skel->maps.lost_counts);
    s.lost_ring_connect = detail::lost_in_kernel(lost_fd, CS_REC_CONNECT);
    s.dns_dropped_reserve = detail::lost_in_kernel(lost_fd, CS_LOST_DNS_RESERVE);
    s.lost_ring_dns = detail::lost_in_kernel(lost_fd, CS_REC_DNS) + s.dns_dropped_reserve;
    s.lost_ring_outcome = detail::lost_in_kernel(lost_fd, CS_REC_OUTCOME);
    s.dns_tcp_dropped_bytes = impl_->dns_feed.tcp_dropped_bytes();
    if (impl_->correlator) {
        const DnsCorrelatorStats c = impl_->correlator->stats();
        s.dns_names_evicted = c.evictions;
        s.dns_evicted_budget = c.evicted_budget;
        s.dns_evicted_global = c.evicted_global;
        s.dns_expired = c.expired;
        s.dns_cache_entries = c.entries;
        s.dns_cache_bytes = c.bytes;
        s.dns_cache_bytes_allocated = c.bytes_allocated;
        s.dns_cache_budget_groups = c.budget_groups;
        // Only the default correlator is known to honour the bound.
        if (!impl_->options.dns.correlator)
            s.dns_cache_bytes_max = impl_->options.dns.cache.max_bytes;
    }
    // Records only: the other counters are in other units (Stats says which).
    s.lost = s.lost_ring_connect + s.lost_ring_dns + s.lost_ring_outcome + s.decode_errors;
    return s;
}

std::vector<BackendStatus> Session::probe_backends(const LogCallback &on_log, LogLevel log_level)
{
    const detail::LogScope log(on_log, log_level);
    const detail::LogScope probing(log, LogLevel::info);
    std::vector<BackendStatus> out;
    detail::LoadSettings settings;
    settings.ring_size = detail::page_size();
    settings.wakeup_watermark = settings.ring_size;
    auto scope = detail::find_cgroup_scope({});
    settings.cgroup = scope.scope;
    settings.cgroup_missing = scope.subtree_only ? "refused: " + scope.why : scope.why;
    const auto missing = host::missing_capabilities();
    for (const auto &b : detail::backend_table()) {
        if (!missing.empty()) {
            out.push_back({b.name, false, "missing " + missing + ": run as root or grant them"});
            continue;
        }
        try {
            detail::attach_backend(b, settings); // detached again at once
            out.push_back({b.name, true, {}});
        } catch (const detail::BackendFailure &f) {
            out.push_back({b.name, false, f.what()});
            detail::LogScope::emit(LogLevel::info, std::string("backend ") + b.name + " unavailable: " + f.what());
        }
    }
    return out;
}

} // namespace connscope
