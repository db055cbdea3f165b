// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The Session wires the parts together and dispatches: the backend and the
// DNS capture (kernel/), one ring reader (kernel/ring), the decoder and the
// DNS feed (records/), the correlator (dns/), and the user's callbacks.
#include <connscope/error.hpp>
#include <connscope/session.hpp>

#include "error_impl.hpp"
#include "kernel/backend.hpp"
#include "kernel/dns_capture.hpp"
#include "kernel/filters.hpp"
#include "kernel/host.hpp"
#include "kernel/log.hpp"
#include "kernel/ring.hpp"
#include "liveness.hpp"
#include "options_impl.hpp"
#include "records/decoder.hpp"
#include "records/dns_feed.hpp"

#include "connscope_connect.skel.h"

#include <bpf/libbpf.h>
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
    std::optional<std::string> cgroup2_path;
    Stats counters; // the user-side counts; kernel counts are added in stats()
    detail::DnsFeed dns_feed{counters};
    std::int64_t epoch_offset_ns = 0;
    const detail::LogScope *log_scope = nullptr; // while the constructor runs
    bool dispatching = false;
    bool break_requested = false;
    int break_result = 0;
    // Reused between records so steady-state decoding does not allocate.
    SecuritySocketConnect connect_event;
    NetTcpConnect tcp_event;

    explicit Impl(Options opts);
    void start_backend(const std::vector<const detail::BackendDescription *> &order, bool forced,
                       const detail::LoadSettings &s);
    void prove_watching();
    void report_health(const HealthEvent &event);
    int handle_record(const void *data, std::size_t size);
    int replay_held();
    void handle_connect(const void *data, std::size_t size);
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
    settings.ring_size = options.ring_size;
    settings.wakeup_watermark = options.ring_size / 4;
    settings.cgroup2_path = host::cgroup2_mount();
    if (forced && std::string(order[0]->name) == "cgroup" && !settings.cgroup2_path)
        throw Error(Errc::no_cgroup2, "starting the cgroup backend: no cgroup v2 hierarchy is mounted "
                                      "(checked /proc/self/mountinfo); mount one with "
                                      "'mount -t cgroup2 none /sys/fs/cgroup/unified' or use another backend");

    cgroup2_path = settings.cgroup2_path;
    settings.before_attach = [this](connscope_connect_bpf *skel) {
        detail::apply_filters(skel, options.filters, cgroup2_path, liveness->canary().port());
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
            correlator = make_default_correlator(cache);
        }
    } else {
        info.dns = "off (disabled by the options)";
        correlator = options.dns.correlator;
    }
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
    if (options.on_health)
        deliver(options.on_health, event);
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
            detail::decode_connect(data, size, epoch_offset_ns, connect_event) && liveness->take(connect_event))
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
    if (!detail::decode_connect(data, size, epoch_offset_ns, ev)) {
        ++counters.decode_errors;
        return;
    }
    if (liveness->take(ev))
        return; // a canary: the Session's own proof, not an event
    ++counters.events;
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
    tcp_ev.dst_ip = inet->ip.to_string();
    tcp_ev.dst_port = inet->port;
    tcp_ev.results.clear();
    if (correlator)
        tcp_ev.results = correlator->lookup(ev.process.ns.net, inet->ip.unmapped(), ev.process.timestamp_ns);
    ++counters.tcp_events;
    deliver(options.on_tcp_connect, tcp_ev);
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
        std::vector<detail::WatchedLinks> watched{{&backend.links, true}};
        if (dns_capture)
            watched.push_back({&dns_capture->links(), false});
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
    detail::apply_filters(impl_->backend.skel, filters, impl_->cgroup2_path, impl_->liveness->canary().port());
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
    s.lost_ring_dns = detail::lost_in_kernel(lost_fd, CS_REC_DNS);
    s.dns_tcp_dropped_bytes = impl_->dns_feed.tcp_dropped_bytes();
    if (impl_->correlator)
        s.dns_names_evicted = impl_->correlator->stats().evictions;
    // Records only: the other counters are in other units (Stats says which).
    s.lost = s.lost_ring_connect + s.lost_ring_dns + s.decode_errors;
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
    settings.cgroup2_path = host::cgroup2_mount();
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
