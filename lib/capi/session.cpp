// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// connscope_session_*: the C face of connscope::Session.
#include "capi.hpp"

#include <connscope/format.hpp>
#include <connscope/session.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace connscope;
using namespace connscope::capi;

struct connscope_session {
    connscope_callbacks callbacks{};
    EventScratch scratch;
    // Set when a callback returned < 0: the rest of this poll delivers nothing
    // more to C (break_poll may still finish the record in hand).
    bool stopped = false;
    std::optional<Session> session;
    // Pointers into session->backend().gaps for connscope_backend_info.
    std::vector<const char *> gaps;
};

namespace {

// A C list (pointer + count) as a vector; NULL with 0 is empty.
template <typename T>
std::vector<T> c_list(const T *items, std::size_t count, const char *name, const char *count_name)
{
    if (count && !items)
        throw Error(EINVAL, std::string("connscope_filters.") + count_name + " is " + std::to_string(count) +
                                " but " + name + " is NULL");
    if (!count && items)
        throw Error(EINVAL, std::string("connscope_filters.") + name + " is set but " + count_name + " is 0");
    return std::vector<T>(items, items + count);
}

std::vector<std::string> c_strings(const char *const *items, std::size_t count, const char *name,
                                   const char *count_name)
{
    std::vector<std::string> out;
    for (const char *item : c_list(items, count, name, count_name)) {
        if (!item)
            throw Error(EINVAL, std::string("connscope_filters.") + name + "[" + std::to_string(out.size()) +
                                    "] is NULL");
        out.emplace_back(item);
    }
    return out;
}

Filters to_filters(const connscope_filters *f)
{
    Filters filters;
    if (!f)
        return filters;
    check_input_struct(f, f->sz, CONNSCOPE_KNOWN_SIZE(connscope_filters), "connscope_filters");
    if (CONNSCOPE_HAS(f, connscope_filters, exclude_self)) {
        switch (f->exclude_self) {
        case CONNSCOPE_SELF_DEFAULT:
        case CONNSCOPE_SELF_EXCLUDE: filters.exclude_self = true; break;
        case CONNSCOPE_SELF_INCLUDE: filters.exclude_self = false; break;
        default:
            throw Error(EINVAL, "connscope_filters.exclude_self is " + std::to_string(f->exclude_self) +
                                    "; use CONNSCOPE_SELF_DEFAULT (0), CONNSCOPE_SELF_EXCLUDE (1) or "
                                    "CONNSCOPE_SELF_INCLUDE (2)");
        }
    }
    // A list is read only when sz covers both its pointer and its count.
    if (CONNSCOPE_HAS(f, connscope_filters, pid_count))
        filters.pids = c_list(f->pids, f->pid_count, "pids", "pid_count");
    if (CONNSCOPE_HAS(f, connscope_filters, uid_count))
        filters.uids = c_list(f->uids, f->uid_count, "uids", "uid_count");
    if (CONNSCOPE_HAS(f, connscope_filters, comm_count))
        filters.comms = c_strings(f->comms, f->comm_count, "comms", "comm_count");
    if (CONNSCOPE_HAS(f, connscope_filters, cgroup_count))
        filters.cgroups = c_strings(f->cgroups, f->cgroup_count, "cgroups", "cgroup_count");
    if (CONNSCOPE_HAS(f, connscope_filters, family_count))
        filters.families = c_list(f->families, f->family_count, "families", "family_count");
    if (CONNSCOPE_HAS(f, connscope_filters, port_count)) {
        for (const connscope_port_range &r : c_list(f->ports, f->port_count, "ports", "port_count"))
            filters.ports.push_back(PortRange{r.first, r.last});
    }
    return filters;
}

Options to_options(const connscope_opts *o)
{
    Options opts;
    if (!o)
        return opts;
    check_input_struct(o, o->sz, CONNSCOPE_KNOWN_SIZE(connscope_opts), "connscope_opts");
    if (CONNSCOPE_HAS(o, connscope_opts, backends) && o->backends && *o->backends)
        opts.backends = parse_backend_list(o->backends);
    if (CONNSCOPE_HAS(o, connscope_opts, ring_size) && o->ring_size)
        opts.ring_size = o->ring_size;
    if (CONNSCOPE_HAS(o, connscope_opts, max_latency_ms) && o->max_latency_ms)
        opts.max_latency = std::chrono::milliseconds(o->max_latency_ms);
    if (CONNSCOPE_HAS(o, connscope_opts, dns_mode)) {
        switch (o->dns_mode) {
        case CONNSCOPE_DNS_DEFAULT: break;
        case CONNSCOPE_DNS_ON: opts.dns.enabled = true; break;
        case CONNSCOPE_DNS_OFF: opts.dns.enabled = false; break;
        default:
            throw Error(EINVAL, "connscope_opts.dns_mode is " + std::to_string(o->dns_mode) +
                                    "; use CONNSCOPE_DNS_DEFAULT (0), CONNSCOPE_DNS_ON (1) or CONNSCOPE_DNS_OFF (2)");
        }
    }
    if (CONNSCOPE_HAS(o, connscope_opts, dns_port_count) && o->dns_port_count) {
        if (!o->dns_ports)
            throw Error(EINVAL, "connscope_opts.dns_port_count is " + std::to_string(o->dns_port_count) +
                                    " but dns_ports is NULL");
        opts.dns.ports.assign(o->dns_ports, o->dns_ports + o->dns_port_count);
    } else if (CONNSCOPE_HAS(o, connscope_opts, dns_ports) && o->dns_ports) {
        throw Error(EINVAL, "connscope_opts.dns_ports is set but dns_port_count is 0");
    }
    if (CONNSCOPE_HAS(o, connscope_opts, dns_payload_max) && o->dns_payload_max)
        opts.dns.payload_max = o->dns_payload_max;
    if (CONNSCOPE_HAS(o, connscope_opts, dns_cache_grace_s) && o->dns_cache_grace_s)
        opts.dns.cache.grace = std::chrono::seconds(o->dns_cache_grace_s);
    if (CONNSCOPE_HAS(o, connscope_opts, dns_cache_max_entries) && o->dns_cache_max_entries)
        opts.dns.cache.max_entries = o->dns_cache_max_entries;
    if (CONNSCOPE_HAS(o, connscope_opts, filters))
        opts.filters = to_filters(o->filters);
    if (CONNSCOPE_HAS(o, connscope_opts, log_level) && o->log_level) {
        if (o->log_level < CONNSCOPE_LOG_ERROR || o->log_level > CONNSCOPE_LOG_DEBUG)
            throw Error(EINVAL, "connscope_opts.log_level is " + std::to_string(o->log_level) +
                                    "; use CONNSCOPE_LOG_ERROR (1) to CONNSCOPE_LOG_DEBUG (4), or 0 for the default");
        opts.log_level = static_cast<LogLevel>(o->log_level);
    }
    if (CONNSCOPE_HAS(o, connscope_opts, log) && o->log) {
        const connscope_log_fn fn = o->log;
        void *ctx = CONNSCOPE_HAS(o, connscope_opts, log_ctx) ? o->log_ctx : nullptr;
        opts.on_log = [fn, ctx](LogLevel level, const std::string &message) {
            fn(static_cast<int>(level), message.c_str(), ctx);
        };
    }
    if (CONNSCOPE_HAS(o, connscope_opts, outcomes_mode)) {
        switch (o->outcomes_mode) {
        case CONNSCOPE_OUTCOMES_DEFAULT: break;
        case CONNSCOPE_OUTCOMES_ON: opts.outcomes = true; break;
        case CONNSCOPE_OUTCOMES_OFF: opts.outcomes = false; break;
        default:
            throw Error(EINVAL, "connscope_opts.outcomes_mode is " + std::to_string(o->outcomes_mode) +
                                    "; use CONNSCOPE_OUTCOMES_DEFAULT (0), CONNSCOPE_OUTCOMES_ON (1) or "
                                    "CONNSCOPE_OUTCOMES_OFF (2)");
        }
    }
    if (CONNSCOPE_HAS(o, connscope_opts, startup_timeout_ms) && o->startup_timeout_ms)
        opts.startup_timeout = std::chrono::milliseconds(o->startup_timeout_ms);
    if (CONNSCOPE_HAS(o, connscope_opts, liveness_interval_ms) && o->liveness_interval_ms)
        opts.liveness_interval = std::chrono::milliseconds(
            o->liveness_interval_ms == CONNSCOPE_LIVENESS_OFF ? 0 : o->liveness_interval_ms);
    if (CONNSCOPE_HAS(o, connscope_opts, health) && o->health) {
        const connscope_health_fn fn = o->health;
        void *ctx = CONNSCOPE_HAS(o, connscope_opts, health_ctx) ? o->health_ctx : nullptr;
        opts.on_health = [fn, ctx](const HealthEvent &e) {
            connscope_health_event out{};
            out.sz = sizeof(out);
            out.kind = static_cast<int>(e.kind);
            out.kind_name = health_kind_name(e.kind);
            out.what = e.what.c_str();
            out.message = e.message.c_str();
            out.timestamp_ns = e.timestamp_ns;
            out.sequence = e.sequence;
            fn(&out, ctx);
        };
    }
    if (CONNSCOPE_HAS(o, connscope_opts, cgroup_root) && o->cgroup_root)
        opts.cgroup_root = o->cgroup_root;
    return opts;
}

void copy_callbacks(const connscope_callbacks *cb, connscope_callbacks &out)
{
    if (!cb)
        return;
    check_input_struct(cb, cb->sz, CONNSCOPE_KNOWN_SIZE(connscope_callbacks),
                       "connscope_callbacks");
    if (CONNSCOPE_HAS(cb, connscope_callbacks, ctx))
        out.ctx = cb->ctx;
    if (CONNSCOPE_HAS(cb, connscope_callbacks, on_connect))
        out.on_connect = cb->on_connect;
    if (CONNSCOPE_HAS(cb, connscope_callbacks, on_tcp_connect))
        out.on_tcp_connect = cb->on_tcp_connect;
    if (CONNSCOPE_HAS(cb, connscope_callbacks, on_outcome))
        out.on_outcome = cb->on_outcome;
}

// A callback's negative return ends the poll with that value.
void after_callback(connscope_session &s, int rc)
{
    if (rc < 0) {
        s.stopped = true;
        s.session->break_poll(rc);
    }
}

Session &live(const connscope_session *s, const char *function)
{
    if (!s)
        null_argument(function, "session");
    if (!s->session)
        throw Error(Errc::moved_from, std::string(function) + ": the session holds nothing");
    return const_cast<Session &>(*s->session);
}

} // namespace

extern "C" {

CONNSCOPE_API int connscope_session_new(const connscope_opts *opts, const connscope_callbacks *callbacks,
                                        connscope_session **out) noexcept
{
    if (out)
        *out = nullptr;
    return guard([&] {
        if (!out)
            null_argument("connscope_session_new", "out");
        auto s = std::make_unique<connscope_session>();
        Options options = to_options(opts);
        copy_callbacks(callbacks, s->callbacks);
        connscope_session *self = s.get();
        if (self->callbacks.on_connect) {
            options.on_connect = [self](const SecuritySocketConnect &ev) {
                if (self->stopped)
                    return;
                connscope_connect_event c;
                to_c_event(ev, self->scratch, c);
                const Delivering outer = delivering;
                delivering = {&c, &ev, nullptr};
                const int rc = self->callbacks.on_connect(&c, self->callbacks.ctx);
                delivering = outer;
                after_callback(*self, rc);
            };
        }
        if (self->callbacks.on_tcp_connect) {
            options.on_tcp_connect = [self](const NetTcpConnect &ev) {
                if (self->stopped)
                    return;
                connscope_tcp_connect_event c;
                to_c_event(ev, self->scratch, c);
                const Delivering outer = delivering;
                delivering = {&c, nullptr, &ev};
                const int rc = self->callbacks.on_tcp_connect(&c, self->callbacks.ctx);
                delivering = outer;
                after_callback(*self, rc);
            };
        }
        if (self->callbacks.on_outcome) {
            options.on_outcome = [self](const ConnectOutcome &ev) {
                if (self->stopped)
                    return;
                connscope_outcome_event c;
                to_c_event(ev, self->scratch, c);
                const Delivering outer = delivering;
                delivering = {&c, nullptr, nullptr, &ev};
                const int rc = self->callbacks.on_outcome(&c, self->callbacks.ctx);
                delivering = outer;
                after_callback(*self, rc);
            };
        }
        s->session.emplace(std::move(options));
        for (const std::string &gap : s->session->backend().gaps)
            s->gaps.push_back(gap.c_str());
        s->gaps.push_back(nullptr);
        *out = s.release();
        return 0;
    });
}

CONNSCOPE_API void connscope_session_free(connscope_session *s) noexcept
{
    guard([&] {
        delete s;
        return 0;
    });
}

CONNSCOPE_API int connscope_session_poll(connscope_session *s, int timeout_ms) noexcept
{
    return guard([&] {
        Session &session = live(s, "connscope_session_poll");
        s->stopped = false;
        return session.poll(std::chrono::milliseconds(timeout_ms));
    });
}

CONNSCOPE_API int connscope_session_consume(connscope_session *s) noexcept
{
    return guard([&] {
        Session &session = live(s, "connscope_session_consume");
        s->stopped = false;
        return session.consume();
    });
}

CONNSCOPE_API int connscope_session_fd(const connscope_session *s) noexcept
{
    return guard([&] { return live(s, "connscope_session_fd").fd(); });
}

CONNSCOPE_API int connscope_session_set_filters(connscope_session *s, const connscope_filters *filters) noexcept
{
    return guard([&] {
        Session &session = live(s, "connscope_session_set_filters");
        session.set_filters(to_filters(filters));
        return 0;
    });
}

CONNSCOPE_API int connscope_session_stats(const connscope_session *s, connscope_stats *out) noexcept
{
    return guard([&] {
        const Session &session = live(s, "connscope_session_stats");
        if (!out)
            null_argument("connscope_session_stats", "out");
        prepare_output_struct(out, out->sz, CONNSCOPE_KNOWN_SIZE(connscope_stats),
                              "connscope_stats");
        const Stats st = session.stats();
#define CONNSCOPE_SET(field)                               \
    if (CONNSCOPE_HAS(out, connscope_stats, field)) \
        out->field = st.field;
        CONNSCOPE_SET(events)
        CONNSCOPE_SET(tcp_events)
        CONNSCOPE_SET(dns_messages)
        CONNSCOPE_SET(lost)
        CONNSCOPE_SET(lost_ring_connect)
        CONNSCOPE_SET(lost_ring_dns)
        CONNSCOPE_SET(decode_errors)
        CONNSCOPE_SET(dns_truncated)
        CONNSCOPE_SET(dns_malformed)
        CONNSCOPE_SET(dns_tcp_dropped_bytes)
        CONNSCOPE_SET(dns_names_evicted)
        CONNSCOPE_SET(callback_errors)
        CONNSCOPE_SET(canaries_sent)
        CONNSCOPE_SET(canaries_missed)
        CONNSCOPE_SET(links_detached)
        CONNSCOPE_SET(reattachments)
        CONNSCOPE_SET(unwatched_ns)
        CONNSCOPE_SET(outcomes)
        CONNSCOPE_SET(lost_ring_outcome)
        CONNSCOPE_SET(dns_dropped_reserve)
        CONNSCOPE_SET(dns_evicted_budget)
        CONNSCOPE_SET(dns_evicted_global)
        CONNSCOPE_SET(dns_expired)
        CONNSCOPE_SET(dns_cache_entries)
        CONNSCOPE_SET(dns_cache_bytes)
        CONNSCOPE_SET(dns_cache_bytes_max)
        CONNSCOPE_SET(dns_cache_bytes_allocated)
        CONNSCOPE_SET(dns_cache_budget_groups)
#undef CONNSCOPE_SET
        return 0;
    });
}

CONNSCOPE_API int connscope_session_stats_json(const connscope_session *s, char *buf, std::size_t len) noexcept
{
    return guard([&] {
        const Session &session = live(s, "connscope_session_stats_json");
        return copy_out(to_json(session.stats(), session.backend().name), buf, len);
    });
}

CONNSCOPE_API int connscope_session_backend(const connscope_session *s, connscope_backend_info *out) noexcept
{
    return guard([&] {
        const BackendInfo &info = live(s, "connscope_session_backend").backend();
        if (!out)
            null_argument("connscope_session_backend", "out");
        prepare_output_struct(out, out->sz, CONNSCOPE_KNOWN_SIZE(connscope_backend_info),
                              "connscope_backend_info");
        if (CONNSCOPE_HAS(out, connscope_backend_info, name))
            out->name = info.name.c_str();
        if (CONNSCOPE_HAS(out, connscope_backend_info, reason))
            out->reason = info.reason.c_str();
        if (CONNSCOPE_HAS(out, connscope_backend_info, dns))
            out->dns = info.dns.c_str();
        if (CONNSCOPE_HAS(out, connscope_backend_info, gaps))
            out->gaps = s->gaps.data();
        if (CONNSCOPE_HAS(out, connscope_backend_info, gap_count))
            out->gap_count = s->gaps.size() - 1;
        if (CONNSCOPE_HAS(out, connscope_backend_info, tried_count))
            out->tried_count = info.tried.size();
        if (CONNSCOPE_HAS(out, connscope_backend_info, cgroup_root))
            out->cgroup_root = info.cgroup_root.c_str();
        if (CONNSCOPE_HAS(out, connscope_backend_info, cgroup_scope))
            out->cgroup_scope = info.cgroup_scope.c_str();
        return 0;
    });
}

CONNSCOPE_API int connscope_session_backend_tried(const connscope_session *s, size_t index,
                                                  connscope_backend_status *out) noexcept
{
    return guard([&] {
        const BackendInfo &info = live(s, "connscope_session_backend_tried").backend();
        if (!out)
            null_argument("connscope_session_backend_tried", "out");
        if (index >= info.tried.size())
            throw Error(ERANGE, "connscope_session_backend_tried: index " + std::to_string(index) +
                                    " is past the " + std::to_string(info.tried.size()) + " backends tried");
        prepare_output_struct(out, out->sz, CONNSCOPE_KNOWN_SIZE(connscope_backend_status),
                              "connscope_backend_status");
        const BackendStatus &b = info.tried[index];
        if (CONNSCOPE_HAS(out, connscope_backend_status, name))
            out->name = b.name.c_str();
        if (CONNSCOPE_HAS(out, connscope_backend_status, available))
            out->available = b.available ? 1 : 0;
        if (CONNSCOPE_HAS(out, connscope_backend_status, reason))
            out->reason = b.reason.c_str();
        return 0;
    });
}

} // extern "C"
