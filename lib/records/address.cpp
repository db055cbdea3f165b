#include <connscope/address.hpp>

#include "text.hpp"

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

void append_decimal(std::string &out, unsigned v)
{
    char buf[10];
    char *p = buf + sizeof(buf);
    do {
        *--p = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v);
    out.append(p, static_cast<std::size_t>(buf + sizeof(buf) - p));
}

void append_quad(std::string &out, const std::uint8_t *b)
{
    for (int i = 0; i < 4; ++i) {
        if (i)
            out += '.';
        append_decimal(out, b[i]);
    }
}

void append_hex_group(std::string &out, std::uint16_t v)
{
    static const char hex[] = "0123456789abcdef";
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
        const unsigned digit = v >> shift & 0xf;
        if (digit || started || shift == 0) {
            out += hex[digit];
            started = true;
        }
    }
}

// Written out rather than taken from inet_ntop: glibc also prints the
// deprecated IPv4-compatible form (::a.b.c.d), which RFC 5952 does not want.
void append_v6(std::string &out, const std::array<std::uint8_t, 16> &b)
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

    const std::size_t start = out.size();
    for (int i = 0; i < 8; ++i) {
        if (i == best) {
            out += "::";
            i += best_len - 1;
            continue;
        }
        if (out.size() > start && out.back() != ':')
            out += ':';
        append_hex_group(out, g[i]);
    }
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

void append_family_number_name(std::string &out, std::uint16_t family)
{
    switch (family) {
    case AF_UNSPEC: out += "AF_UNSPEC"; return;
    case AF_UNIX: out += "AF_UNIX"; return;
    case AF_INET: out += "AF_INET"; return;
    case AF_INET6: out += "AF_INET6"; return;
    default:
        out += "AF_";
        append_decimal(out, family);
    }
}

} // namespace

namespace detail {

void append_ip(std::string &out, const IpAddress &ip)
{
    if (ip.family == IpAddress::Family::v4) {
        append_quad(out, ip.bytes.data());
    } else if (ip.is_v4_mapped()) {
        out += "::ffff:";
        append_quad(out, ip.bytes.data() + 12);
    } else {
        append_v6(out, ip.bytes);
    }
}

void append_address(std::string &out, const SocketAddress &address)
{
    if (const auto *inet = std::get_if<InetEndpoint>(&address)) {
        if (inet->ip.family == IpAddress::Family::v4) {
            append_ip(out, inet->ip);
        } else {
            out += '[';
            append_ip(out, inet->ip);
            if (inet->scope_id != 0) {
                out += '%';
                append_decimal(out, inet->scope_id);
            }
            out += ']';
        }
        out += ':';
        append_decimal(out, inet->port);
        return;
    }
    if (const auto *unix_ep = std::get_if<UnixEndpoint>(&address)) {
        switch (unix_ep->kind) {
        case UnixEndpoint::Kind::unnamed:
            out += "(unnamed)";
            return;
        case UnixEndpoint::Kind::abstract:
            out += '@';
            break;
        case UnixEndpoint::Kind::path:
            break;
        }
        append_escaped(out, unix_ep->name);
        return;
    }
    const auto &unknown = std::get<UnknownAddress>(address);
    append_family_number_name(out, unknown.family);
    out += " (len ";
    append_decimal(out, unknown.length);
    out += ')';
}

} // namespace detail

std::string IpAddress::to_string() const
{
    std::string out;
    detail::append_ip(out, *this);
    return out;
}

std::string family_name(const SocketAddress &address)
{
    if (const auto *inet = std::get_if<InetEndpoint>(&address))
        return inet->ip.family == IpAddress::Family::v4 ? "AF_INET" : "AF_INET6";
    if (std::holds_alternative<UnixEndpoint>(address))
        return "AF_UNIX";
    std::string out;
    append_family_number_name(out, std::get<UnknownAddress>(address).family);
    return out;
}

std::string to_string(const SocketAddress &address)
{
    std::string out;
    detail::append_address(out, address);
    return out;
}

} // namespace connscope
