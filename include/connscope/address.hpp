/**
 * @file address.hpp
 * @brief IP addresses and socket addresses as typed values, with text forms.
 */
#pragma once

#include <connscope/export.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace connscope {

/** An IPv4 or IPv6 address. */
struct CONNSCOPE_API IpAddress {
    /** The address family. */
    enum class Family : std::uint8_t {
        v4 = 4, /**< IPv4: the first 4 bytes of bytes are used. */
        v6 = 6, /**< IPv6: all 16 bytes. */
    };
    Family family = Family::v4;        /**< IPv4 or IPv6. */
    std::array<std::uint8_t, 16> bytes{}; /**< Network byte order; unused bytes are zero. */

    /** Makes an IPv4 address from 4 bytes in network order. */
    static IpAddress v4(const std::uint8_t *four_bytes) noexcept;
    /** Makes an IPv6 address from 16 bytes in network order. */
    static IpAddress v6(const std::uint8_t *sixteen_bytes) noexcept;
    /**
     * Parses dotted-quad IPv4 or any RFC 4291 text form of IPv6.
     * @return the address, or nothing when text is not an address.
     */
    static std::optional<IpAddress> parse(std::string_view text);

    /** True for an IPv6 address of the form \::ffff:a.b.c.d (IPv4-mapped). */
    bool is_v4_mapped() const noexcept;
    /** The IPv4 address inside an IPv4-mapped IPv6 address; any other address unchanged. */
    IpAddress unmapped() const noexcept;
    /** Dotted quad for IPv4; the RFC 5952 canonical form for IPv6. */
    std::string to_string() const;

    /** Equal family and bytes. */
    friend bool operator==(const IpAddress &a, const IpAddress &b) noexcept
    {
        return a.family == b.family && a.bytes == b.bytes;
    }
    /** Not equal. */
    friend bool operator!=(const IpAddress &a, const IpAddress &b) noexcept { return !(a == b); }
};

/** An AF_INET or AF_INET6 socket address. */
struct InetEndpoint {
    IpAddress ip;               /**< The address; its family tells AF_INET from AF_INET6. */
    std::uint16_t port = 0;     /**< Port in host byte order. */
    std::uint32_t flowinfo = 0; /**< IPv6 flow information (host order); 0 for IPv4. */
    std::uint32_t scope_id = 0; /**< IPv6 scope (interface index); 0 for IPv4. */
};

/** An AF_UNIX socket address. */
struct UnixEndpoint {
    /** Which of the three kinds of UNIX address (unix(7)). */
    enum class Kind : std::uint8_t {
        path,     /**< A filesystem path. */
        abstract, /**< An abstract name (first byte NUL in the kernel's copy). */
        unnamed,  /**< No name (addrlen covered only sun_family). */
    };
    Kind kind = Kind::unnamed; /**< The kind of address. */
    /**
     * The path, or the abstract name without its leading NUL. Raw bytes: it
     * may hold any byte, including NUL inside an abstract name.
     */
    std::string name;
};

/**
 * An address the library did not decode: an unsupported family, or an addrlen
 * too short for the family it names. Reported as is, never guessed at.
 */
struct UnknownAddress {
    std::uint16_t family = 0; /**< sa_family as the caller passed it (0 if addrlen < 2). */
    std::uint32_t length = 0; /**< addrlen as the caller passed it. */
};

/** The remote address of a connect: IPv4/IPv6, UNIX, or undecoded. */
using SocketAddress = std::variant<InetEndpoint, UnixEndpoint, UnknownAddress>;

/** The kernel's name of the address family: "AF_INET", "AF_INET6", "AF_UNIX", "AF_UNSPEC", or "AF_<number>". */
CONNSCOPE_API std::string family_name(const SocketAddress &address);

/**
 * A human-readable form: "127.0.0.1:80", "[::1]:80" ("[fe80::1%2]:80" with a
 * scope), "/run/x.sock", "@name" for abstract names, "(unnamed)", or
 * "AF_<n> (len N)". Non-printable bytes of UNIX names are shown as \\xNN.
 */
CONNSCOPE_API std::string to_string(const SocketAddress &address);

} // namespace connscope
