// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <connscope/format.hpp>

#include <cstdio>
#include <cstring>

namespace connscope {
namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one.
std::size_t utf8_length(std::string_view s, std::size_t i)
{
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = byte(i);
    std::size_t len;
    std::uint32_t min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (i + len > s.size())
        return 0;
    std::uint32_t cp = c & (0x7f >> len);
    for (std::size_t k = 1; k < len; ++k) {
        if ((byte(i + k) & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (byte(i + k) & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not valid UTF-8.
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

void append_u00(std::string &out, unsigned char c)
{
    char buf[8];
    std::snprintf(buf, sizeof(buf), "\\u%04x", c);
    out += buf;
}

class Json {
public:
    explicit Json(const char *event)
    {
        out_ = "{\"event\":\"";
        out_ += event;
        out_ += "\",\"schema\":";
        out_ += std::to_string(json_schema_version);
    }
    Json &num(const char *key, unsigned long long v)
    {
        field(key) += std::to_string(v);
        return *this;
    }
    Json &snum(const char *key, long long v)
    {
        field(key) += std::to_string(v);
        return *this;
    }
    Json &str(const char *key, std::string_view v)
    {
        auto &o = field(key);
        o += '"';
        o += json_escape(v);
        o += '"';
        return *this;
    }
    Json &raw(const char *key, const std::string &v)
    {
        field(key) += v;
        return *this;
    }
    std::string done() { return out_ + "}"; }

private:
    std::string &field(const char *key)
    {
        out_ += ",\"";
        out_ += key;
        out_ += "\":";
        return out_;
    }
    std::string out_;
};

void process_fields(Json &j, const ProcessContext &p)
{
    j.num("timestamp", p.timestamp_ns)
        .num("pid", p.pid)
        .num("tid", p.tid)
        .num("ppid", p.ppid)
        .num("uid", p.uid)
        .num("gid", p.gid)
        .str("comm", p.comm)
        .num("cgroup_id", p.cgroup_id)
        .str("container_id", p.container_id)
        .num("mnt_ns", p.ns.mnt)
        .num("net_ns", p.ns.net)
        .num("pid_ns", p.ns.pid)
        .num("user_ns", p.ns.user)
        .num("uts_ns", p.ns.uts)
        .num("ipc_ns", p.ns.ipc)
        .num("cgroup_ns", p.ns.cgroup);
}

} // namespace

std::string json_escape(std::string_view s)
{
    std::string out;
    out.reserve(s.size() + 8);
    for (std::size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7f) {
            append_u00(out, c);
        } else if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (std::size_t len = utf8_length(s, i)) {
            out.append(s.data() + i, len);
            i += len;
            continue;
        } else {
            append_u00(out, c);
        }
        ++i;
    }
    return out;
}

std::string to_json(const SocketAddress &address)
{
    std::string out = "{\"family\":\"" + family_name(address) + "\"";
    if (const auto *inet = std::get_if<InetEndpoint>(&address)) {
        out += ",\"ip\":\"" + inet->ip.to_string() + "\",\"port\":" + std::to_string(inet->port);
        if (inet->scope_id)
            out += ",\"scope_id\":" + std::to_string(inet->scope_id);
    } else if (const auto *un = std::get_if<UnixEndpoint>(&address)) {
        std::string path = un->kind == UnixEndpoint::Kind::abstract ? "@" + un->name : un->name;
        out += ",\"path\":\"" + json_escape(path) + "\"";
    } else if (const auto *unk = std::get_if<UnknownAddress>(&address)) {
        out += ",\"addrlen\":" + std::to_string(unk->length);
    }
    return out + "}";
}

std::string to_json(const SecuritySocketConnect &ev)
{
    Json j("security_socket_connect");
    j.num("seq", ev.sequence).num("connect_id", ev.connect_id);
    process_fields(j, ev.process);
    return j.snum("sockfd", ev.sockfd)
        .str("type", socket_type_name(ev.type))
        .raw("remote_addr", to_json(ev.remote_addr))
        .raw("toctou", ev.toctou ? "true" : "false")
        .str("via", connect_via_name(ev.via))
        .raw("late", ev.late ? "true" : "false")
        .done();
}

std::string to_json(const NetTcpConnect &ev)
{
    Json j("net_tcp_connect");
    j.num("seq", ev.sequence).num("connect_id", ev.connect_id);
    process_fields(j, ev.process);
    std::string results = "[";
    for (std::size_t i = 0; i < ev.results.size(); ++i)
        results += (i ? ",\"" : "\"") + json_escape(ev.results[i]) + "\"";
    results += "]";
    return j.snum("sockfd", ev.sockfd)
        .str("dst_ip", ev.dst_ip)
        .num("dst_port", ev.dst_port)
        .raw("results", results)
        .str("via", connect_via_name(ev.via))
        .done();
}

std::string to_json(const ConnectOutcome &ev)
{
    Json j("connect_outcome");
    j.num("seq", ev.sequence)
        .num("connect_id", ev.connect_id)
        .num("timestamp", ev.timestamp_ns)
        .num("pid", ev.pid)
        .num("tid", ev.tid)
        .str("via", connect_via_name(ev.via))
        .str("outcome", outcome_name(ev));
    if (ev.result)
        j.snum("result", *ev.result);
    else
        j.raw("result", "null");
    // An errno is 1 to 4095; any other negative result (a corrupt record) has no name.
    const char *error = ev.result && *ev.result < 0 && *ev.result > -4096 ? strerrorname_np(-*ev.result) : nullptr;
    j.str("error", error ? error : "")
        .str("lsm", lsm_verdict_name(ev.lsm))
        .snum("lsm_error", ev.lsm_error)
        .str("tcp", tcp_result_name(ev.tcp))
        .snum("tcp_error", ev.tcp_error)
        .num("duration_ns", ev.duration_ns)
        .raw("local_addr", ev.local ? to_json(SocketAddress{*ev.local}) : std::string("null"))
        .num("socket_cookie", ev.socket_cookie);
    return j.done();
}

std::string to_json(const Stats &s, std::string_view backend)
{
    Json j("stats");
    j.num("events", s.events)
        .num("lost", s.lost)
        .num("tcp_events", s.tcp_events)
        .num("dns_messages", s.dns_messages)
        .num("lost_ring_connect", s.lost_ring_connect)
        .num("lost_ring_dns", s.lost_ring_dns)
        .num("dns_truncated", s.dns_truncated)
        .num("dns_malformed", s.dns_malformed)
        .num("dns_tcp_dropped_bytes", s.dns_tcp_dropped_bytes)
        .num("decode_errors", s.decode_errors)
        .num("dns_names_evicted", s.dns_names_evicted)
        .num("callback_errors", s.callback_errors)
        .num("canaries_sent", s.canaries_sent)
        .num("canaries_missed", s.canaries_missed)
        .num("links_detached", s.links_detached)
        .num("reattachments", s.reattachments)
        .num("unwatched_ns", s.unwatched_ns)
        .num("outcomes", s.outcomes)
        .num("lost_ring_outcome", s.lost_ring_outcome)
        .num("dns_dropped_reserve", s.dns_dropped_reserve)
        .num("dns_evicted_budget", s.dns_evicted_budget)
        .num("dns_evicted_global", s.dns_evicted_global)
        .num("dns_expired", s.dns_expired)
        .num("dns_cache_entries", s.dns_cache_entries)
        .num("dns_cache_bytes", s.dns_cache_bytes)
        .num("dns_cache_bytes_max", s.dns_cache_bytes_max)
        .num("dns_cache_bytes_allocated", s.dns_cache_bytes_allocated)
        .num("dns_cache_budget_groups", s.dns_cache_budget_groups);
    if (!backend.empty())
        j.str("backend", backend);
    return j.done();
}

const char *health_kind_name(HealthKind kind) noexcept
{
    switch (kind) {
    case HealthKind::canary_missed: return "canary_missed";
    case HealthKind::link_detached: return "link_detached";
    case HealthKind::reattached: return "reattached";
    case HealthKind::reattach_failed: return "reattach_failed";
    }
    return "unknown";
}

std::string to_json(const HealthEvent &e)
{
    Json j("health");
    j.num("seq", e.sequence)
        .str("kind", health_kind_name(e.kind))
        .str("what", e.what)
        .str("message", e.message)
        .num("timestamp", e.timestamp_ns);
    return j.done();
}

} // namespace connscope
