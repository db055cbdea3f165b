// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <connscope/events.hpp>

#include <cerrno>

namespace connscope {

std::string socket_type_name(SocketType type)
{
    switch (type) {
    case SocketType::stream: return "SOCK_STREAM";
    case SocketType::dgram: return "SOCK_DGRAM";
    case SocketType::raw: return "SOCK_RAW";
    case SocketType::rdm: return "SOCK_RDM";
    case SocketType::seqpacket: return "SOCK_SEQPACKET";
    case SocketType::dccp: return "SOCK_DCCP";
    case SocketType::packet: return "SOCK_PACKET";
    case SocketType::unknown: break;
    }
    return "SOCK_" + std::to_string(static_cast<unsigned>(type));
}

std::string connect_via_name(ConnectVia via)
{
    switch (via) {
    case ConnectVia::connect: return "connect";
    case ConnectVia::fastopen: return "fastopen";
    case ConnectVia::io_uring: return "io_uring";
    case ConnectVia::unknown: break;
    }
    return "unknown";
}

std::string lsm_verdict_name(LsmVerdict verdict)
{
    switch (verdict) {
    case LsmVerdict::allowed: return "allowed";
    case LsmVerdict::denied: return "denied";
    case LsmVerdict::unknown: break;
    }
    return "unknown";
}

std::string tcp_result_name(TcpResult result)
{
    switch (result) {
    case TcpResult::established: return "established";
    case TcpResult::refused: return "refused";
    case TcpResult::timed_out: return "timed_out";
    case TcpResult::unreachable: return "unreachable";
    case TcpResult::closed: return "closed";
    case TcpResult::none: break;
    }
    return "none";
}

std::string outcome_name(const ConnectOutcome &o)
{
    if (o.lsm == LsmVerdict::denied)
        return "denied";
    if (o.tcp != TcpResult::none)
        return tcp_result_name(o.tcp);
    if (!o.result)
        return "unknown";
    return *o.result >= 0 ? "connected" : "failed";
}

} // namespace connscope
