#include <connscope/address.hpp>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstring>

namespace connscope {

IpAddress IpAddress::v4(const std::uint8_t *four_bytes) noexcept
{
    IpAddress a;
    a.family = Family::v4;
    std::memcpy(a.bytes.data(), four_bytes, 4);
    return a;
}

IpAddress IpAddress::v6(const std::uint8_t *sixteen_bytes) noexcept
{
    IpAddress a;
    a.family = Family::v6;
    std::memcpy(a.bytes.data(), sixteen_bytes, 16);
    return a;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text)
{
    // The longest IPv6 text form (with an embedded IPv4 quad) is 45 characters;
    // anything longer, or with an embedded NUL, cannot be an address and must
    // not reach inet_pton truncated.
    char buf[48];
    if (text.empty() || text.size() >= sizeof(buf) || text.find('\0') != std::string_view::npos)
        return std::nullopt;
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';

    std::uint8_t raw[16];
    // glibc's inet_pton accepts exactly the RFC 4291 forms for AF_INET6 and
    // only a strict dotted quad (no octal, no short forms) for AF_INET.
    if (text.find(':') != std::string_view::npos) {
        if (inet_pton(AF_INET6, buf, raw) != 1)
            return std::nullopt;
        return v6(raw);
    }
    if (inet_pton(AF_INET, buf, raw) != 1)
        return std::nullopt;
    return v4(raw);
}

bool IpAddress::is_v4_mapped() const noexcept
{
    if (family != Family::v6)
        return false;
    for (int i = 0; i < 10; ++i)
        if (bytes[i] != 0)
            return false;
    return bytes[10] == 0xff && bytes[11] == 0xff;
}

IpAddress IpAddress::unmapped() const noexcept
{
    if (!is_v4_mapped())
        return *this;
    return v4(bytes.data() + 12);
}

namespace {

void append_quad(std::string &out, const std::uint8_t *b)
{
    char buf[16];
    int n = std::snprintf(buf, sizeof(buf), "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
    out.append(buf, static_cast<std::size_t>(n));
}

// Written out rather than taken from inet_ntop: glibc also prints the
// deprecated IPv4-compatible form (::a.b.c.d), which RFC 5952 does not want.
std::string v6_text(const std::array<std::uint8_t, 16> &b)
{
    std::uint16_t g[8];
    for (int i = 0; i < 8; ++i)
        g[i] = static_cast<std::uint16_t>(b[2 * i] << 8 | b[2 * i + 1]);

    int best = -1, best_len = 0;
    for (int i = 0; i < 8;) {
        if (g[i] != 0) {
            ++i;
            continue;
        }
        int j = i;
        while (j < 8 && g[j] == 0)
            ++j;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j;
    }
    if (best_len < 2)
        best = -1;

    std::string out;
    out.reserve(40);
    char buf[8];
    for (int i = 0; i < 8; ++i) {
        if (i == best) {
            out += "::";
            i += best_len - 1;
            continue;
        }
        if (!out.empty() && out.back() != ':')
            out += ':';
        int n = std::snprintf(buf, sizeof(buf), "%x", g[i]);
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

void append_escaped(std::string &out, const std::string &name)
{
    static const char hex[] = "0123456789abcdef";
    for (unsigned char c : name) {
        // Backslash is escaped too, so "\x00" in the output always means one byte.
        if (c < 0x20 || c >= 0x7f || c == '\\') {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xf];
        } else {
            out += static_cast<char>(c);
        }
    }
}

std::string family_number_name(std::uint16_t family)
{
    switch (family) {
    case AF_UNSPEC:
        return "AF_UNSPEC";
    case AF_UNIX:
        return "AF_UNIX";
    case AF_INET:
        return "AF_INET";
    case AF_INET6:
        return "AF_INET6";
    default:
        return "AF_" + std::to_string(family);
    }
}

} // namespace

std::string IpAddress::to_string() const
{
    if (family == Family::v4) {
        std::string out;
        append_quad(out, bytes.data());
        return out;
    }
    if (is_v4_mapped()) {
        std::string out = "::ffff:";
        append_quad(out, bytes.data() + 12);
        return out;
    }
    return v6_text(bytes);
}

std::string family_name(const SocketAddress &address)
{
    if (const auto *inet = std::get_if<InetEndpoint>(&address))
        return inet->ip.family == IpAddress::Family::v4 ? "AF_INET" : "AF_INET6";
    if (std::holds_alternative<UnixEndpoint>(address))
        return "AF_UNIX";
    return family_number_name(std::get<UnknownAddress>(address).family);
}

std::string to_string(const SocketAddress &address)
{
    if (const auto *inet = std::get_if<InetEndpoint>(&address)) {
        std::string port = std::to_string(inet->port);
        if (inet->ip.family == IpAddress::Family::v4)
            return inet->ip.to_string() + ":" + port;
        std::string out = "[" + inet->ip.to_string();
        if (inet->scope_id != 0)
            out += "%" + std::to_string(inet->scope_id);
        return out + "]:" + port;
    }
    if (const auto *unix_ep = std::get_if<UnixEndpoint>(&address)) {
        std::string out;
        switch (unix_ep->kind) {
        case UnixEndpoint::Kind::unnamed:
            return "(unnamed)";
        case UnixEndpoint::Kind::abstract:
            out = "@";
            break;
        case UnixEndpoint::Kind::path:
            break;
        }
        append_escaped(out, unix_ep->name);
        return out;
    }
    const auto &unknown = std::get<UnknownAddress>(address);
    return family_number_name(unknown.family) + " (len " + std::to_string(unknown.length) + ")";
}

} // namespace connscope
