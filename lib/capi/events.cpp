// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// C++ events to the C event structs handed to callbacks.
#include "capi.hpp"
#include "records/text.hpp"

#include <connscope/format.hpp>

#include <climits>

#include <sys/socket.h>

#include <type_traits>
#include <variant>

namespace connscope::capi {

static_assert(CONNSCOPE_VIA_UNKNOWN == static_cast<int>(ConnectVia::unknown) &&
                  CONNSCOPE_VIA_CONNECT == static_cast<int>(ConnectVia::connect) &&
                  CONNSCOPE_VIA_FASTOPEN == static_cast<int>(ConnectVia::fastopen) &&
                  CONNSCOPE_VIA_IO_URING == static_cast<int>(ConnectVia::io_uring),
              "the C constants name the C++ values");
static_assert(CONNSCOPE_LSM_DENIED == static_cast<int>(LsmVerdict::denied) &&
                  CONNSCOPE_LSM_ALLOWED == static_cast<int>(LsmVerdict::allowed) &&
                  CONNSCOPE_TCP_ESTABLISHED == static_cast<int>(TcpResult::established) &&
                  CONNSCOPE_TCP_REFUSED == static_cast<int>(TcpResult::refused) &&
                  CONNSCOPE_TCP_TIMED_OUT == static_cast<int>(TcpResult::timed_out) &&
                  CONNSCOPE_TCP_UNREACHABLE == static_cast<int>(TcpResult::unreachable) &&
                  CONNSCOPE_TCP_CLOSED == static_cast<int>(TcpResult::closed),
              "the C outcome constants name the C++ values");

namespace {

// Copies text into a fixed buffer, always NUL-terminated (comm is at most 15 bytes,
// IP text at most 45, a container id 64, so truncation never happens for valid input).
template <std::size_t N>
void copy_text(char (&dst)[N], const std::string &src) noexcept
{
    std::size_t n = src.size() < N - 1 ? src.size() : N - 1;
    std::memcpy(dst, src.data(), n);
    dst[n] = '\0';
}

void to_c_process(const ProcessContext &p, connscope_process &out) noexcept
{
    out = connscope_process{};
    out.size = sizeof(out);
    out.timestamp_ns = p.timestamp_ns;
    out.cgroup_id = p.cgroup_id;
    out.pid = p.pid;
    out.tid = p.tid;
    out.ppid = p.ppid;
    out.uid = p.uid;
    out.gid = p.gid;
    out.mnt_ns = p.ns.mnt;
    out.net_ns = p.ns.net;
    out.pid_ns = p.ns.pid;
    out.user_ns = p.ns.user;
    out.uts_ns = p.ns.uts;
    out.ipc_ns = p.ns.ipc;
    out.cgroup_ns = p.ns.cgroup;
    copy_text(out.comm, p.comm);
    copy_text(out.container_id, p.container_id);
}

int32_t to_c_unix_kind(UnixEndpoint::Kind kind) noexcept
{
    switch (kind) {
    case UnixEndpoint::Kind::path: return CONNSCOPE_UNIX_PATH;
    case UnixEndpoint::Kind::abstract: return CONNSCOPE_UNIX_ABSTRACT;
    case UnixEndpoint::Kind::unnamed: break;
    }
    return CONNSCOPE_UNIX_UNNAMED;
}

void to_c_address(const SocketAddress &addr, EventScratch &scratch, connscope_address &out)
{
    out = connscope_address{};
    out.size = sizeof(out);
    scratch.family_name = family_name(addr);
    scratch.text.clear();
    detail::append_address(scratch.text, addr);
    out.family_name = scratch.family_name.c_str();
    out.text = scratch.text.c_str();
    out.unix_name = "";
    std::visit(
        [&](const auto &a) {
            using T = std::decay_t<decltype(a)>;
            if constexpr (std::is_same_v<T, InetEndpoint>) {
                out.kind = CONNSCOPE_ADDR_INET;
                out.family = a.ip.family == IpAddress::Family::v6 ? AF_INET6 : AF_INET;
                out.port = a.port;
                out.flowinfo = a.flowinfo;
                out.scope_id = a.scope_id;
                std::memcpy(out.ip, a.ip.bytes.data(), sizeof(out.ip));
                detail::assign_ip(scratch.ip_text, a.ip);
                copy_text(out.ip_text, scratch.ip_text);
            } else if constexpr (std::is_same_v<T, UnixEndpoint>) {
                out.kind = CONNSCOPE_ADDR_UNIX;
                out.family = AF_UNIX;
                out.unix_kind = to_c_unix_kind(a.kind);
                out.unix_name = a.name.c_str(); // std::string keeps a NUL after the bytes
                out.unix_name_len = a.name.size();
            } else {
                out.kind = CONNSCOPE_ADDR_UNKNOWN;
                out.family = a.family;
                out.addrlen = a.length;
            }
        },
        addr);
}

} // namespace

void to_c_event(const SecuritySocketConnect &ev, EventScratch &scratch, connscope_connect_event &out)
{
    out = connscope_connect_event{};
    out.size = sizeof(out);
    out.sockfd = ev.sockfd;
    to_c_process(ev.process, scratch.process);
    out.process = &scratch.process;
    out.type = static_cast<int32_t>(ev.type);
    out.toctou = ev.toctou ? 1 : 0;
    scratch.type_name = socket_type_name(ev.type);
    out.type_name = scratch.type_name.c_str();
    to_c_address(ev.remote_addr, scratch, scratch.address);
    out.remote_addr = &scratch.address;
    out.via = static_cast<int32_t>(ev.via);
    scratch.via_name = connect_via_name(ev.via);
    out.via_name = scratch.via_name.c_str();
    out.connect_id = ev.connect_id;
    out.sequence = ev.sequence;
    out.late = ev.late ? 1 : 0;
}

void to_c_event(const NetTcpConnect &ev, EventScratch &scratch, connscope_tcp_connect_event &out)
{
    out = connscope_tcp_connect_event{};
    out.size = sizeof(out);
    out.sockfd = ev.sockfd;
    to_c_process(ev.process, scratch.process);
    out.process = &scratch.process;
    copy_text(out.dst_ip, ev.dst_ip);
    out.dst_port = ev.dst_port;
    scratch.results.clear();
    for (const std::string &name : ev.results)
        scratch.results.push_back(name.c_str());
    out.result_count = scratch.results.size();
    scratch.results.push_back(nullptr); // NULL-terminated as well as counted
    out.results = scratch.results.data();
    out.via = static_cast<int32_t>(ev.via);
    scratch.via_name = connect_via_name(ev.via);
    out.via_name = scratch.via_name.c_str();
    out.connect_id = ev.connect_id;
    out.sequence = ev.sequence;
}

void to_c_event(const ConnectOutcome &ev, EventScratch &scratch, connscope_outcome_event &out)
{
    out = connscope_outcome_event{};
    out.size = sizeof(out);
    out.pid = ev.pid;
    out.tid = ev.tid;
    out.connect_id = ev.connect_id;
    out.sequence = ev.sequence;
    out.timestamp_ns = ev.timestamp_ns;
    out.duration_ns = ev.duration_ns;
    out.via = static_cast<int32_t>(ev.via);
    scratch.via_name = connect_via_name(ev.via);
    out.via_name = scratch.via_name.c_str();
    out.result_known = ev.result ? 1 : 0;
    out.result = ev.result.value_or(0);
    out.lsm = static_cast<int32_t>(ev.lsm);
    out.lsm_error = ev.lsm_error;
    scratch.lsm_name = lsm_verdict_name(ev.lsm);
    out.lsm_name = scratch.lsm_name.c_str();
    out.tcp = static_cast<int32_t>(ev.tcp);
    out.tcp_error = ev.tcp_error;
    scratch.tcp_name = tcp_result_name(ev.tcp);
    out.tcp_name = scratch.tcp_name.c_str();
    scratch.outcome_name = outcome_name(ev);
    out.outcome_name = scratch.outcome_name.c_str();
    out.local_addr = nullptr;
    if (ev.local) {
        to_c_address(*ev.local, scratch, scratch.address);
        out.local_addr = &scratch.address;
    }
    out.socket_cookie = ev.socket_cookie;
}

thread_local Delivering delivering;

int copy_out(const std::string &text, char *buf, std::size_t len)
{
    if (!buf && len)
        throw Error(EINVAL, "buf is NULL but len is " + std::to_string(len));
    if (text.size() > static_cast<std::size_t>(INT32_MAX))
        throw Error(EOVERFLOW, "the text is longer than an int can say");
    if (len) {
        const std::size_t n = text.size() < len - 1 ? text.size() : len - 1;
        std::memcpy(buf, text.data(), n);
        buf[n] = '\0';
    }
    return static_cast<int>(text.size());
}

} // namespace connscope::capi

namespace {

// A callback's event as JSON: ev must be the C event of the callback running
// on this thread, and original the C++ event it was made from.
template <typename Event>
int event_json(const void *ev, const Event *original, const char *function, const char *callback, char *buf,
               std::size_t len)
{
    return connscope::capi::guard([&] {
        if (!ev || ev != connscope::capi::delivering.c_event || !original)
            throw connscope::Error(EINVAL, std::string(function) +
                                               ": ev is not the event of a callback running on this thread; call it "
                                               "from the " +
                                               callback + " callback with the event it received");
        return connscope::capi::copy_out(connscope::to_json(*original), buf, len);
    });
}

} // namespace

extern "C" {

CONNSCOPE_API int connscope_connect_event_json(const connscope_connect_event *ev, char *buf, std::size_t len) noexcept
{
    return event_json(ev, connscope::capi::delivering.connect, "connscope_connect_event_json", "on_connect", buf, len);
}

CONNSCOPE_API int connscope_tcp_connect_event_json(const connscope_tcp_connect_event *ev, char *buf,
                                                   std::size_t len) noexcept
{
    return event_json(ev, connscope::capi::delivering.tcp, "connscope_tcp_connect_event_json", "on_tcp_connect", buf,
                      len);
}

CONNSCOPE_API int connscope_outcome_event_json(const connscope_outcome_event *ev, char *buf, std::size_t len) noexcept
{
    return event_json(ev, connscope::capi::delivering.outcome, "connscope_outcome_event_json", "on_outcome", buf,
                      len);
}

} // extern "C"
