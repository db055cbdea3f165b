// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "decoder.hpp"

#include <cerrno>
#include <cstring>
#include <sys/socket.h>

namespace connscope::detail {
namespace {

constexpr std::uint32_t sockaddr_in_size = 16;
constexpr std::uint32_t sockaddr_in6_min = 24;  // SIN6_LEN_RFC2133: no scope id
constexpr std::uint32_t sockaddr_in6_size = 28;
constexpr std::uint32_t sun_path_offset = 2;
constexpr std::uint32_t sun_path_max = 108;

std::uint16_t load16(const std::uint8_t *p)
{
    std::uint16_t v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

std::uint32_t load32(const std::uint8_t *p)
{
    std::uint32_t v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

std::uint16_t net16(const std::uint8_t *p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }

std::uint32_t net32(const std::uint8_t *p)
{
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

} // namespace

std::uint64_t boot_to_epoch_ns(std::uint64_t boot_ns, std::int64_t epoch_offset_ns)
{
    // boot_ns comes from the ring: a corrupt record must not overflow, so
    // the sum saturates at the ends of the range instead.
    if (epoch_offset_ns >= 0) {
        const auto offset = static_cast<std::uint64_t>(epoch_offset_ns);
        return boot_ns > UINT64_MAX - offset ? UINT64_MAX : boot_ns + offset;
    }
    // The magnitude of a negative int64 fits in uint64 (INT64_MIN included).
    const std::uint64_t back = 0 - static_cast<std::uint64_t>(epoch_offset_ns);
    return boot_ns < back ? 0 : boot_ns - back;
}

std::uint32_t record_type(const void *data, std::size_t size)
{
    cs_header hdr;
    if (size < sizeof(hdr))
        return 0;
    std::memcpy(&hdr, data, sizeof(hdr));
    if (hdr.size < sizeof(hdr) || hdr.size > size)
        return 0;
    return hdr.type;
}

void decode_sockaddr(const std::uint8_t *addr, std::uint32_t addrlen, bool fault, SocketAddress &out,
                     std::string &spare_name)
{
    // A UNIX name's buffer waits in spare_name while out holds another kind.
    if (auto *unix_ep = std::get_if<UnixEndpoint>(&out))
        spare_name.swap(unix_ep->name);
    std::uint32_t avail = addrlen < CS_SOCKADDR_MAX ? addrlen : CS_SOCKADDR_MAX;
    if (fault || avail < 2) {
        out = UnknownAddress{avail >= 2 && !fault ? load16(addr) : std::uint16_t{0}, addrlen};
        return;
    }
    std::uint16_t family = load16(addr);

    if (family == AF_INET && avail >= sockaddr_in_size) {
        InetEndpoint ep;
        ep.ip = IpAddress::v4(addr + 4);
        ep.port = net16(addr + 2);
        out = ep;
        return;
    }
    if (family == AF_INET6 && avail >= sockaddr_in6_min) {
        InetEndpoint ep;
        ep.ip = IpAddress::v6(addr + 8);
        ep.port = net16(addr + 2);
        ep.flowinfo = net32(addr + 4);
        if (avail >= sockaddr_in6_size)
            ep.scope_id = load32(addr + 24);
        out = ep;
        return;
    }
    if (family == AF_UNIX) {
        UnixEndpoint &ep = out.emplace<UnixEndpoint>();
        ep.name.swap(spare_name);
        std::uint32_t len = avail - sun_path_offset;
        if (len > sun_path_max)
            len = sun_path_max;
        const char *path = reinterpret_cast<const char *>(addr + sun_path_offset);
        if (len == 0) {
            ep.kind = UnixEndpoint::Kind::unnamed;
            ep.name.clear();
        } else if (path[0] == '\0') {
            ep.kind = UnixEndpoint::Kind::abstract;
            ep.name.assign(path + 1, len - 1);
        } else {
            ep.kind = UnixEndpoint::Kind::path;
            ep.name.assign(path, strnlen(path, len));
        }
        return;
    }
    out = UnknownAddress{family, addrlen};
}

SocketAddress decode_sockaddr(const std::uint8_t *addr, std::uint32_t addrlen, bool fault)
{
    SocketAddress out;
    std::string spare_name;
    decode_sockaddr(addr, addrlen, fault, out, spare_name);
    return out;
}

bool decode_connect(const void *data, std::size_t size, std::int64_t epoch_offset_ns,
                    SecuritySocketConnect &out, std::string *spare_name)
{
    cs_connect_record rec;
    if (size < sizeof(rec))
        return false;
    std::memcpy(&rec, data, sizeof(rec));
    // A hook no program of ours has is a corrupt record, not an event.
    if (rec.hdr.type != CS_REC_CONNECT || rec.hdr.size != sizeof(rec) || rec.hook < CS_HOOK_LSM ||
        rec.hook > CS_HOOK_LAST || rec.via > CS_VIA_LAST || rec.connect_id == 0)
        return false;

    ProcessContext &p = out.process;
    p.timestamp_ns = boot_to_epoch_ns(rec.hdr.boot_ns, epoch_offset_ns);
    p.pid = rec.proc.pid;
    p.tid = rec.proc.tid;
    p.ppid = rec.proc.ppid;
    p.uid = rec.proc.uid;
    p.gid = rec.proc.gid;
    p.comm.assign(rec.proc.comm, strnlen(rec.proc.comm, sizeof(rec.proc.comm)));
    p.cgroup_id = rec.proc.cgroup_id;
    p.container_id.clear(); // the Session resolves it from cgroup_id (kernel/container_ids)
    p.ns = Namespaces{rec.proc.mnt_ns, rec.proc.net_ns,  rec.proc.pid_ns,   rec.proc.user_ns,
                      rec.proc.uts_ns, rec.proc.ipc_ns, rec.proc.cgroup_ns};
    out.sockfd = rec.sockfd;
    out.type = static_cast<SocketType>(rec.sock_type);
    out.toctou = (rec.flags & CS_CONNECT_TOCTOU) != 0;
    out.via = static_cast<ConnectVia>(rec.via);
    out.late = (rec.flags & CS_CONNECT_LATE) != 0;
    out.connect_id = rec.connect_id;
    std::string own_spare;
    decode_sockaddr(rec.addr, rec.addrlen, (rec.flags & CS_CONNECT_ADDR_FAULT) != 0, out.remote_addr,
                    spare_name ? *spare_name : own_spare);
    return true;
}

namespace {

TcpResult tcp_result(std::uint16_t state, std::int32_t sk_err)
{
    if (state == CS_TCP_ESTABLISHED)
        return TcpResult::established;
    switch (sk_err) {
    case ECONNREFUSED: return TcpResult::refused;
    case ETIMEDOUT: return TcpResult::timed_out;
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
    case ENONET:
    case EPROTO: // ICMP parameter problem
        return TcpResult::unreachable;
    default: return TcpResult::closed;
    }
}

} // namespace

bool decode_outcome(const void *data, std::size_t size, std::int64_t epoch_offset_ns, ConnectOutcome &out)
{
    cs_outcome_record rec;
    if (size < sizeof(rec))
        return false;
    std::memcpy(&rec, data, sizeof(rec));
    const cs_outcome &o = rec.out;
    const bool tcp = (o.flags & CS_OUTCOME_TCP) != 0;
    if (rec.hdr.type != CS_REC_OUTCOME || rec.hdr.size != sizeof(rec) || o.connect_id == 0 || o.via > CS_VIA_LAST ||
        (tcp && o.tcp_state != CS_TCP_ESTABLISHED && o.tcp_state != CS_TCP_CLOSE) || o.sk_err < 0)
        return false;
    out.connect_id = o.connect_id;
    out.timestamp_ns = boot_to_epoch_ns(o.end_boot_ns, epoch_offset_ns);
    out.duration_ns = o.end_boot_ns > o.attempt_boot_ns ? o.end_boot_ns - o.attempt_boot_ns : 0;
    out.pid = o.pid;
    out.tid = o.tid;
    out.via = static_cast<ConnectVia>(o.via);
    out.result.reset();
    if (o.flags & CS_OUTCOME_RESULT)
        out.result = o.result;
    out.lsm = LsmVerdict::unknown;
    out.lsm_error = 0;
    if (o.flags & CS_OUTCOME_LSM_KNOWN) {
        out.lsm = o.lsm_result == 0 ? LsmVerdict::allowed : LsmVerdict::denied;
        // A verdict is 0 or -errno; report the errno, whatever the sign.
        out.lsm_error = o.lsm_result < 0 ? (o.lsm_result == INT32_MIN ? INT32_MAX : -o.lsm_result) : o.lsm_result;
    }
    out.tcp = tcp ? tcp_result(o.tcp_state, o.sk_err) : TcpResult::none;
    out.tcp_error = tcp ? o.sk_err : 0;
    out.local.reset();
    if ((o.flags & CS_OUTCOME_LOCAL) && (o.local_family == AF_INET || o.local_family == AF_INET6)) {
        InetEndpoint ep;
        ep.ip = o.local_family == AF_INET ? IpAddress::v4(o.local_addr) : IpAddress::v6(o.local_addr);
        ep.port = o.local_port;
        out.local = ep;
    }
    out.socket_cookie = o.cookie;
    return true;
}

bool decode_dns(const void *data, std::size_t size, DnsRecordView &out)
{
    if (size < sizeof(out.header))
        return false;
    std::memcpy(&out.header, data, sizeof(out.header));
    const cs_dns_record &h = out.header;
    if (h.hdr.type != CS_REC_DNS || h.hdr.size != sizeof(h) + h.captured || h.hdr.size > size ||
        h.captured > CS_DNS_PAYLOAD_MAX || h.captured > h.orig_len)
        return false;
    out.payload = static_cast<const std::uint8_t *>(data) + sizeof(h);
    return true;
}

} // namespace connscope::detail
