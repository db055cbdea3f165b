// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "json_out.hpp"

#include <connscope/address.hpp>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <unistd.h>

namespace trace {
namespace {

// The field order and names are the contract of lib/records/format.cpp; any
// change there must show here, and json_equivalence.cpp fails until it does.

// The events are written through a raw cursor into space reserved up front
// (one resize per event instead of a capacity check per field): a fixed part
// plus the strings, each at most 6 bytes per input byte once escaped.
class Cursor {
public:
    Cursor(std::string &out, std::size_t bound) : out_(out), start_(out.size())
    {
        out.resize(start_ + bound);
        p_ = out.data() + start_;
    }
    ~Cursor() { out_.resize(static_cast<std::size_t>(p_ - out_.data())); }
    Cursor(const Cursor &) = delete;
    Cursor &operator=(const Cursor &) = delete;

    template <std::size_t N>
    Cursor &lit(const char (&text)[N])
    {
        std::memcpy(p_, text, N - 1);
        p_ += N - 1;
        return *this;
    }
    Cursor &raw(std::string_view s)
    {
        std::memcpy(p_, s.data(), s.size());
        p_ += s.size();
        return *this;
    }
    Cursor &ch(char c)
    {
        *p_++ = c;
        return *this;
    }
    Cursor &num(unsigned long long v)
    {
        p_ = std::to_chars(p_, p_ + 20, v).ptr;
        return *this;
    }
    Cursor &snum(long long v)
    {
        p_ = std::to_chars(p_, p_ + 20, v).ptr;
        return *this;
    }
    // Most strings (comm, addresses, names) need no escaping: copy those, and
    // leave every other case to the library's json_escape.
    Cursor &escaped(std::string_view s)
    {
        if (plain(s))
            return raw(s);
        return raw(connscope::json_escape(s));
    }
    static bool plain(std::string_view s)
    {
        for (unsigned char c : s)
            if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
                return false;
        return true;
    }

private:
    std::string &out_;
    std::size_t start_;
    char *p_;
};

constexpr std::size_t escaped_bound(std::size_t n) { return n * 6; }

// Upper bound of everything process_fields writes but the prefix: 15 keys
// (< 20 bytes each, quotes included) and 15 numbers (<= 20 digits each),
// plus comm and container_id.
std::size_t process_bound(const connscope::ProcessContext &p)
{
    return 15 * 20 + 15 * 20 + escaped_bound(p.comm.size()) + escaped_bound(p.container_id.size());
}

void process_fields(Cursor &c, const connscope::ProcessContext &p)
{
    c.num(p.timestamp_ns)
        .lit(",\"pid\":")
        .num(p.pid)
        .lit(",\"tid\":")
        .num(p.tid)
        .lit(",\"ppid\":")
        .num(p.ppid)
        .lit(",\"uid\":")
        .num(p.uid)
        .lit(",\"gid\":")
        .num(p.gid)
        .lit(",\"comm\":\"")
        .escaped(p.comm)
        .lit("\",\"cgroup_id\":")
        .num(p.cgroup_id)
        .lit(",\"container_id\":\"")
        .escaped(p.container_id)
        .lit("\",\"mnt_ns\":")
        .num(p.ns.mnt)
        .lit(",\"net_ns\":")
        .num(p.ns.net)
        .lit(",\"pid_ns\":")
        .num(p.ns.pid)
        .lit(",\"user_ns\":")
        .num(p.ns.user)
        .lit(",\"uts_ns\":")
        .num(p.ns.uts)
        .lit(",\"ipc_ns\":")
        .num(p.ns.ipc)
        .lit(",\"cgroup_ns\":")
        .num(p.ns.cgroup);
}

// The family name and (for IPv6) the address text, made before the cursor
// reserves, so the bound covers them.
struct AddressText {
    std::string family;
    std::string ip6;
    std::size_t bound = 0;
};

AddressText address_text(const connscope::SocketAddress &a)
{
    AddressText t;
    t.family = connscope::family_name(a);
    t.bound = 64 + t.family.size();
    if (const auto *inet = std::get_if<connscope::InetEndpoint>(&a)) {
        if (inet->ip.family != connscope::IpAddress::Family::v4)
            t.ip6 = inet->ip.to_string();
        t.bound += 16 + t.ip6.size();
    } else if (const auto *un = std::get_if<connscope::UnixEndpoint>(&a)) {
        t.bound += escaped_bound(un->name.size());
    }
    return t;
}

void address(Cursor &c, const connscope::SocketAddress &a, const AddressText &t)
{
    c.lit("{\"family\":\"").raw(t.family).ch('"');
    if (const auto *inet = std::get_if<connscope::InetEndpoint>(&a)) {
        c.lit(",\"ip\":\"");
        if (inet->ip.family == connscope::IpAddress::Family::v4)
            c.num(inet->ip.bytes[0]).ch('.').num(inet->ip.bytes[1]).ch('.').num(inet->ip.bytes[2]).ch('.').num(
                inet->ip.bytes[3]);
        else
            c.raw(t.ip6);
        c.lit("\",\"port\":").num(inet->port);
        if (inet->scope_id)
            c.lit(",\"scope_id\":").num(inet->scope_id);
    } else if (const auto *un = std::get_if<connscope::UnixEndpoint>(&a)) {
        c.lit(",\"path\":\"");
        // json_escape("@" + name): '@' never needs escaping, so '@' then the name.
        if (un->kind == connscope::UnixEndpoint::Kind::abstract)
            c.ch('@');
        c.escaped(un->name).ch('"');
    } else if (const auto *unk = std::get_if<connscope::UnknownAddress>(&a)) {
        c.lit(",\"addrlen\":").num(unk->length);
    }
    c.ch('}');
}

} // namespace

void append_json_line(std::string &out, const connscope::SecuritySocketConnect &ev)
{
    const std::string type = connscope::socket_type_name(ev.type);
    const AddressText addr = address_text(ev.remote_addr);
    const std::string via = connscope::connect_via_name(ev.via);
    Cursor c(out, 240 + process_bound(ev.process) + escaped_bound(type.size()) + addr.bound);
    c.lit("{\"event\":\"security_socket_connect\",\"schema\":").num(connscope::json_schema_version);
    c.lit(",\"seq\":").num(ev.sequence).lit(",\"connect_id\":").num(ev.connect_id).lit(",\"timestamp\":");
    process_fields(c, ev.process);
    c.lit(",\"sockfd\":").snum(ev.sockfd).lit(",\"type\":\"").escaped(type).lit("\",\"remote_addr\":");
    address(c, ev.remote_addr, addr);
    if (ev.toctou)
        c.lit(",\"toctou\":true");
    else
        c.lit(",\"toctou\":false");
    c.lit(",\"via\":\"").escaped(via);
    if (ev.late)
        c.lit("\",\"late\":true}\n");
    else
        c.lit("\",\"late\":false}\n");
}

void append_json_line(std::string &out, const connscope::NetTcpConnect &ev)
{
    const std::string via = connscope::connect_via_name(ev.via);
    std::size_t bound = 240 + process_bound(ev.process) + escaped_bound(ev.dst_ip.size());
    for (const auto &name : ev.results)
        bound += 4 + escaped_bound(name.size());
    Cursor c(out, bound);
    c.lit("{\"event\":\"net_tcp_connect\",\"schema\":").num(connscope::json_schema_version);
    c.lit(",\"seq\":").num(ev.sequence).lit(",\"connect_id\":").num(ev.connect_id).lit(",\"timestamp\":");
    process_fields(c, ev.process);
    c.lit(",\"sockfd\":").snum(ev.sockfd).lit(",\"dst_ip\":\"").escaped(ev.dst_ip).lit("\",\"dst_port\":");
    c.num(ev.dst_port).lit(",\"results\":[");
    for (std::size_t i = 0; i < ev.results.size(); ++i) {
        if (i)
            c.ch(',');
        c.ch('"').escaped(ev.results[i]).ch('"');
    }
    c.lit("],\"via\":\"").escaped(via).lit("\"}\n");
}

void append_json_line(std::string &out, const connscope::ConnectOutcome &ev)
{
    const std::string via = connscope::connect_via_name(ev.via);
    const std::string outcome = connscope::outcome_name(ev);
    const std::string lsm = connscope::lsm_verdict_name(ev.lsm);
    const std::string tcp = connscope::tcp_result_name(ev.tcp);
    // An errno is 1 to 4095; any other negative result (a corrupt record) has no name.
    const char *error = ev.result && *ev.result < 0 && *ev.result > -4096 ? strerrorname_np(-*ev.result) : nullptr;
    const std::string_view error_text = error ? error : "";
    AddressText local;
    if (ev.local)
        local = address_text(connscope::SocketAddress{*ev.local});
    Cursor c(out, 480 + via.size() + outcome.size() + lsm.size() + tcp.size() + escaped_bound(error_text.size()) +
                      local.bound);
    c.lit("{\"event\":\"connect_outcome\",\"schema\":").num(connscope::json_schema_version);
    c.lit(",\"seq\":").num(ev.sequence).lit(",\"connect_id\":").num(ev.connect_id);
    c.lit(",\"timestamp\":").num(ev.timestamp_ns).lit(",\"pid\":").num(ev.pid).lit(",\"tid\":").num(ev.tid);
    c.lit(",\"via\":\"").escaped(via).lit("\",\"outcome\":\"").escaped(outcome).lit("\",\"result\":");
    if (ev.result)
        c.snum(*ev.result);
    else
        c.lit("null");
    c.lit(",\"error\":\"").escaped(error_text).lit("\",\"lsm\":\"").escaped(lsm);
    c.lit("\",\"lsm_error\":").snum(ev.lsm_error).lit(",\"tcp\":\"").escaped(tcp);
    c.lit("\",\"tcp_error\":").snum(ev.tcp_error).lit(",\"duration_ns\":").num(ev.duration_ns);
    c.lit(",\"local_addr\":");
    if (ev.local)
        address(c, connscope::SocketAddress{*ev.local}, local);
    else
        c.lit("null");
    c.lit(",\"socket_cookie\":").num(ev.socket_cookie).lit("}\n");
}

JsonOut::JsonOut(int fd, std::size_t capacity) : fd_(fd), capacity_(capacity)
{
    // Room for the last event past the mark, so the buffer never reallocates.
    buf_.reserve(capacity + 16 * 1024);
}

void JsonOut::line(const std::string &text)
{
    buf_ += text;
    buf_ += '\n';
    if (buf_.size() >= capacity_)
        flush();
}

void JsonOut::flush()
{
    const char *p = buf_.data();
    std::size_t left = buf_.size();
    while (left && !error_) {
        const ssize_t n = ::write(fd_, p, left);
        if (n < 0) {
            if (errno == EINTR) // a signal arrived (the handler has no SA_RESTART)
                continue;
            error_ = errno;
            break;
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    buf_.clear();
}

} // namespace trace
