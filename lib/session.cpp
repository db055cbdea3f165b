// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <connscope/error.hpp>
#include <connscope/session.hpp>

#include "backend.hpp"
#include "decoder.hpp"
#include "dns/tcp_stream.hpp"
#include "filters.hpp"
#include "system.hpp"

#include "connscope_connect.skel.h"
#include "connscope_dns.skel.h"

#include <algorithm>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

namespace connscope {

const std::vector<std::string> &backend_names()
{
    static const std::vector<std::string> names{"lsm", "fentry", "kprobe", "cgroup", "tracepoint"};
    return names;
}

namespace {

std::string valid_backends_text()
{
    std::string out = "auto";
    for (const auto &n : backend_names())
        out += ", " + n;
    return out;
}

// Expands "auto" and drops repeats, keeping the first place of each name.
std::vector<std::string> expand_backends(const std::vector<std::string> &names)
{
    if (names.empty())
        throw Error(EINVAL, "no backend given: name one of " + valid_backends_text());
    std::vector<std::string> out;
    auto add = [&out](const std::string &n) {
        if (std::find(out.begin(), out.end(), n) == out.end())
            out.push_back(n);
    };
    for (const auto &n : names) {
        if (n == "auto") {
            for (const auto &b : backend_names())
                add(b);
        } else if (std::find(backend_names().begin(), backend_names().end(), n) != backend_names().end()) {
            add(n);
        } else {
            throw Error(EINVAL, "unknown backend '" + n + "': valid backends are " + valid_backends_text());
        }
    }
    return out;
}

std::size_t page_size() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

void validate(const Options &o)
{
    const std::size_t page = page_size();
    bool pow2 = o.ring_size && (o.ring_size & (o.ring_size - 1)) == 0;
    if (!pow2 || o.ring_size < page || o.ring_size > (std::size_t{1} << 30)) {
        std::size_t nearest = page;
        while (nearest < o.ring_size && nearest < (std::size_t{1} << 30))
            nearest <<= 1;
        if (nearest > page && nearest - o.ring_size > o.ring_size - nearest / 2)
            nearest >>= 1;
        throw Error(EINVAL, "ring size " + std::to_string(o.ring_size) +
                                " is not a power-of-two multiple of the page size (" + std::to_string(page) +
                                ") up to 1 GiB; the nearest valid size is " + std::to_string(nearest));
    }
    if (o.max_latency.count() < 1 || o.max_latency.count() > 10000)
        throw Error(EINVAL, "max_latency " + std::to_string(o.max_latency.count()) +
                                " ms is out of range: give 1 to 10000 ms");
    if (o.dns.enabled) {
        if (o.dns.ports.empty() || o.dns.ports.size() > CS_DNS_PORTS_MAX)
            throw Error(EINVAL, "DNS ports: give 1 to " + std::to_string(CS_DNS_PORTS_MAX) + " ports, not " +
                                    std::to_string(o.dns.ports.size()));
        for (auto p : o.dns.ports)
            if (p == 0)
                throw Error(EINVAL, "DNS port 0 is not a port: give 1 to 65535");
        if (o.dns.payload_max < 64 || o.dns.payload_max > CS_DNS_PAYLOAD_MAX)
            throw Error(EINVAL, "DNS payload bound " + std::to_string(o.dns.payload_max) +
                                    " is out of range: give 64 to " + std::to_string(CS_DNS_PAYLOAD_MAX));
    }
}

struct FdCloser {
    int &fd;
    ~FdCloser()
    {
        if (fd >= 0)
            ::close(fd);
    }
};

} // namespace

std::vector<std::string> parse_backend_list(const std::string &text)
{
    std::vector<std::string> names;
    std::size_t start = 0;
    while (start <= text.size()) {
        auto comma = text.find(',', start);
        auto item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        if (item.empty())
            throw Error(EINVAL, "empty backend name in '" + text + "': valid backends are " +
                                    valid_backends_text());
        names.push_back(item);
        if (comma == std::string::npos)
            break;
        start = comma + 1;
    }
    expand_backends(names); // validates
    return names;
}

// Hidden: a nested class of an exported one would otherwise be exported too.
struct __attribute__((visibility("hidden"))) Session::Impl {
    Options options;
    BackendInfo info;
    detail::AttachedBackend backend;
    connscope_dns_bpf *dns_skel = nullptr;
    bpf_link *dns_link = nullptr;
    ring_buffer *ring = nullptr;
    int epoll_fd = -1;
    int timer_fd = -1;
    std::shared_ptr<DnsCorrelator> correlator;
    dns::TcpReassembler tcp;
    std::optional<std::string> cgroup2_path;
    Stats counters; // the user-side counts; kernel counts are added in stats()
    std::int64_t epoch_offset_ns = 0;
    bool dispatching = false;
    bool break_requested = false;
    int break_result = 0;
    // Reused between records so steady-state decoding does not allocate.
    SecuritySocketConnect connect_event;
    NetTcpConnect tcp_event;
    DnsMessage dns_message;

    explicit Impl(Options opts);
    ~Impl();
    void start_backend(const std::vector<std::string> &order, bool forced, const detail::LoadSettings &s);
    void start_dns(const detail::LoadSettings &s);
    void start_ring();
    int handle_record(const void *data, std::size_t size);
    void handle_connect(const void *data, std::size_t size);
    void handle_dns(const void *data, std::size_t size);
    void observe_dns(std::uint64_t netns, std::uint64_t time_ns, const std::uint8_t *msg, std::size_t len);
    int drain();
    void clear_timer();
    template <typename Event>
    void deliver(const std::function<void(const Event &)> &callback, const Event &event);
};

Session::Impl::Impl(Options opts) : options(std::move(opts))
{
    validate(options);
    std::vector<std::string> order = expand_backends(options.backends);
    bool forced = order.size() == 1;

    if (!sys::kernel_has_btf())
        throw Error(Errc::no_btf, "starting a session: /sys/kernel/btf/vmlinux is missing, so the BPF programs "
                                  "cannot be adapted to this kernel (CO-RE); use a kernel built with "
                                  "CONFIG_DEBUG_INFO_BTF=y (Linux 5.8 or later)");
    auto missing = sys::missing_capabilities();
    if (!missing.empty())
        throw Error(EPERM, "starting a session: missing " + missing +
                               "; run as root or grant CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN");

    detail::LoadSettings settings;
    settings.ring_size = options.ring_size;
    settings.wakeup_watermark = options.ring_size / 4;
    settings.cgroup2_path = sys::cgroup2_mount();
    if (forced && order[0] == "cgroup" && !settings.cgroup2_path)
        throw Error(Errc::no_cgroup2, "starting the cgroup backend: no cgroup v2 hierarchy is mounted "
                                      "(checked /proc/self/mountinfo); mount one with "
                                      "'mount -t cgroup2 none /sys/fs/cgroup/unified' or use another backend");

    cgroup2_path = settings.cgroup2_path;
    settings.before_attach = [this](connscope_connect_bpf *skel) {
        detail::apply_filters(skel, options.filters, cgroup2_path);
    };
    start_backend(order, forced, settings);
    if (options.dns.enabled)
        start_dns(settings);
    else
        info.dns = "off (disabled by the options)";
    if (options.dns.enabled && !options.dns.correlator)
        correlator = make_default_correlator(options.dns.cache);
    else
        correlator = options.dns.correlator;
    start_ring();
}

void Session::Impl::start_backend(const std::vector<std::string> &order, bool forced,
                                  const detail::LoadSettings &settings)
{
    std::string refused, refused_short;
    for (const auto &name : order) {
        try {
            backend = detail::attach_backend(name, settings);
        } catch (const detail::BackendFailure &f) {
            info.tried.push_back({name, false, f.what()});
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
        return;
    }
    std::string msg = "no backend could start (tried " + std::to_string(order.size()) + "): " + refused;
    throw Error(Errc::backend_unavailable, msg);
}

void Session::Impl::start_dns(const detail::LoadSettings &settings)
{
    auto off = [this](const std::string &why) {
        info.dns = "off: " + why;
        if (dns_link)
            bpf_link__destroy(dns_link);
        dns_link = nullptr;
        connscope_dns_bpf__destroy(dns_skel);
        dns_skel = nullptr;
    };
    if (!settings.cgroup2_path)
        return off("no cgroup v2 hierarchy is mounted, so cgroup_skb/ingress cannot be attached; mount one "
                   "(mount -t cgroup2 none /sys/fs/cgroup/unified)");
    dns_skel = connscope_dns_bpf__open();
    if (!dns_skel)
        return off("opening the DNS BPF object: " + sys::errno_text(errno));
    // The DNS program writes into the connect object's ring, so the one ring keeps the order.
    int err = bpf_map__reuse_fd(dns_skel->maps.events_rb, bpf_map__fd(backend.skel->maps.events_rb));
    if (!err)
        err = bpf_map__reuse_fd(dns_skel->maps.lost_counts, bpf_map__fd(backend.skel->maps.lost_counts));
    if (err)
        return off("sharing the ring buffer with the DNS program: " + sys::errno_text(-err));
    dns_skel->rodata->wakeup_watermark = settings.wakeup_watermark;
    dns_skel->rodata->dns_payload_max = options.dns.payload_max;
    dns_skel->rodata->dns_port_count = static_cast<__u32>(options.dns.ports.size());
    for (std::size_t i = 0; i < options.dns.ports.size(); ++i)
        dns_skel->rodata->dns_ports[i] = options.dns.ports[i];
    err = connscope_dns_bpf__load(dns_skel);
    if (err)
        return off("loading cgroup_skb/ingress: " + sys::errno_text(-err) +
                   " (it needs Linux 6.2 or later for bpf_cast_to_kern_ctx)");
    int cg = ::open(settings.cgroup2_path->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cg < 0)
        return off("opening " + *settings.cgroup2_path + ": " + sys::errno_text(errno));
    dns_link = bpf_program__attach_cgroup(dns_skel->progs.handle_dns_ingress, cg);
    int attach_err = errno;
    ::close(cg);
    if (!dns_link)
        return off("attaching cgroup_skb/ingress: " + sys::errno_text(attach_err));
    std::string ports;
    for (auto p : options.dns.ports)
        ports += (ports.empty() ? "" : ",") + std::to_string(p);
    info.dns = "on: cgroup_skb/ingress on " + *settings.cgroup2_path + ", UDP and TCP from port " + ports;
}

void Session::Impl::start_ring()
{
    ring = ring_buffer__new(bpf_map__fd(backend.skel->maps.events_rb),
                            [](void *ctx, void *data, std::size_t size) {
                                return static_cast<Impl *>(ctx)->handle_record(data, size);
                            },
                            this, nullptr);
    if (!ring)
        throw Error(errno, "creating the ring buffer reader: " + sys::errno_text(errno));

    epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0)
        throw Error(errno, "creating the session's epoll fd: " + sys::errno_text(errno));
    timer_fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer_fd < 0)
        throw Error(errno, "creating the latency timer: " + sys::errno_text(errno));
    // Records are submitted without a wakeup, so this timer bounds their delay.
    auto ms = options.max_latency.count();
    itimerspec period{};
    period.it_interval.tv_sec = ms / 1000;
    period.it_interval.tv_nsec = (ms % 1000) * 1000000;
    period.it_value = period.it_interval;
    if (::timerfd_settime(timer_fd, 0, &period, nullptr) < 0)
        throw Error(errno, "arming the latency timer: " + sys::errno_text(errno));
    for (int fd : {ring_buffer__epoll_fd(ring), timer_fd}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
            throw Error(errno, "adding to the session's epoll fd: " + sys::errno_text(errno));
    }
}

Session::Impl::~Impl()
{
    ring_buffer__free(ring);
    if (epoll_fd >= 0)
        ::close(epoll_fd);
    if (timer_fd >= 0)
        ::close(timer_fd);
    bpf_link__destroy(dns_link);
    connscope_dns_bpf__destroy(dns_skel);
    // backend's destructor detaches and frees the connect programs.
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
    switch (detail::record_type(data, size)) {
    case CS_REC_CONNECT:
        handle_connect(data, size);
        break;
    case CS_REC_DNS:
        handle_dns(data, size);
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
    tcp_ev.dst_ip = inet->ip.to_string();
    tcp_ev.dst_port = inet->port;
    tcp_ev.results.clear();
    if (correlator)
        tcp_ev.results = correlator->lookup(ev.process.ns.net, inet->ip.unmapped(), ev.process.timestamp_ns);
    ++counters.tcp_events;
    deliver(options.on_tcp_connect, tcp_ev);
}

void Session::Impl::observe_dns(std::uint64_t netns, std::uint64_t time_ns, const std::uint8_t *msg,
                                std::size_t len)
{
    auto status = parse_dns_message(msg, len, dns_message);
    if (status != DnsParseError::ok) {
        ++counters.dns_malformed;
        return;
    }
    ++counters.dns_messages;
    if (correlator)
        correlator->observe(netns, time_ns, dns_message);
}

void Session::Impl::handle_dns(const void *data, std::size_t size)
{
    detail::DnsRecordView rec;
    if (!detail::decode_dns(data, size, rec)) {
        ++counters.decode_errors;
        return;
    }
    const cs_dns_record &h = rec.header;
    std::uint64_t time_ns = detail::boot_to_epoch_ns(h.hdr.boot_ns, epoch_offset_ns);
    bool truncated = h.flags & CS_DNS_TRUNCATED;
    if (truncated)
        ++counters.dns_truncated;
    if (!(h.flags & CS_DNS_TCP)) {
        if (!truncated)
            observe_dns(h.net_ns, time_ns, rec.payload, h.captured);
        return;
    }
    dns::TcpFlowKey key;
    key.netns = h.net_ns;
    bool v6 = h.flags & CS_DNS_IPV6;
    key.src = v6 ? IpAddress::v6(h.saddr) : IpAddress::v4(h.saddr);
    key.dst = v6 ? IpAddress::v6(h.daddr) : IpAddress::v4(h.daddr);
    key.sport = h.sport;
    key.dport = h.dport;
    // A truncated segment leaves a hole in the stream: end the flow there.
    bool fin = (h.flags & CS_DNS_TCP_FIN) || truncated;
    tcp.feed(key, h.tcp_seq, rec.payload, truncated ? 0 : h.captured, fin,
             [&](const std::uint8_t *msg, std::size_t len) { observe_dns(h.net_ns, time_ns, msg, len); });
}

// Reads the latency timer's expirations so the epoll fd is not readable for them again.
void Session::Impl::clear_timer()
{
    std::uint64_t expirations;
    while (::read(timer_fd, &expirations, sizeof(expirations)) > 0) {
    }
}

int Session::Impl::drain()
{
    if (dispatching)
        throw Error(EDEADLK, "poll() or consume() called from inside a callback; return from the callback "
                             "first (use break_poll() to stop the current poll)");
    epoch_offset_ns = sys::boot_to_realtime_offset_ns();
    break_requested = false;
    dispatching = true;
    int n = ring_buffer__consume(ring);
    dispatching = false;
    if (break_requested)
        return break_result;
    if (n < 0)
        throw Error(-n, "reading the ring buffer: " + sys::errno_text(-n));
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
        epoll_event evs[2];
        int n = ::epoll_wait(impl_->epoll_fd, evs, 2, wait_ms);
        if (n < 0 && errno != EINTR)
            throw Error(errno, "waiting for events: " + sys::errno_text(errno));
        impl_->clear_timer();
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
    impl_->clear_timer();
    return impl_->drain();
}

int Session::fd() const
{
    if (!impl_)
        moved_from();
    return impl_->epoll_fd;
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
    detail::apply_filters(impl_->backend.skel, filters, impl_->cgroup2_path);
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
    int cpus = libbpf_num_possible_cpus();
    if (cpus > 0) {
        std::vector<std::uint64_t> values(static_cast<std::size_t>(cpus));
        int map_fd = bpf_map__fd(impl_->backend.skel->maps.lost_counts);
        auto sum = [&](std::uint32_t type) {
            std::uint64_t total = 0;
            if (bpf_map_lookup_elem(map_fd, &type, values.data()) == 0)
                for (auto v : values)
                    total += v;
            return total;
        };
        s.lost_ring_connect = sum(CS_REC_CONNECT);
        s.lost_ring_dns = sum(CS_REC_DNS);
    }
    s.dns_tcp_dropped = impl_->tcp.dropped_bytes();
    if (impl_->correlator)
        s.correlator_evictions = impl_->correlator->stats().evictions;
    s.lost = s.lost_ring_connect + s.lost_ring_dns + s.dns_truncated + s.dns_malformed + s.dns_tcp_dropped +
             s.decode_errors + s.correlator_evictions + s.callback_errors;
    return s;
}

std::vector<BackendStatus> Session::probe_backends()
{
    std::vector<BackendStatus> out;
    detail::LoadSettings settings;
    settings.ring_size = page_size();
    settings.wakeup_watermark = settings.ring_size;
    settings.cgroup2_path = sys::cgroup2_mount();
    auto missing = sys::missing_capabilities();
    for (const auto &name : backend_names()) {
        if (!missing.empty()) {
            out.push_back({name, false, "missing " + missing + ": run as root or grant them"});
            continue;
        }
        try {
            detail::attach_backend(name, settings); // detached again at once
            out.push_back({name, true, {}});
        } catch (const detail::BackendFailure &f) {
            out.push_back({name, false, f.what()});
        }
    }
    return out;
}

} // namespace connscope
