/**
 * @file format.hpp
 * @brief Text forms of events: the JSON contract connscope-trace prints.
 *
 * The JSON names are a contract other tools parse; they are documented in
 * docs/guide.md and never renamed.
 */
#pragma once

#include <connscope/events.hpp>
#include <connscope/export.h>
#include <connscope/session.hpp>

#include <string>
#include <string_view>

namespace connscope {

/**
 * Escapes bytes for a JSON string (without the quotes). The result is valid
 * JSON and valid UTF-8 whatever the input: control characters become \\uXXXX,
 * and bytes that are not part of valid UTF-8 become \\u00XX (their Latin-1 code point).
 * @par Thread safety
 * Reentrant.
 */
CONNSCOPE_API std::string json_escape(std::string_view bytes);

/**
 * The remote address as a JSON object: {"family":"AF_INET","ip":"127.0.0.1","port":80},
 * AF_INET6 likewise (RFC 5952 "ip", and "scope_id" when not 0),
 * {"family":"AF_UNIX","path":"/run/x.sock"} ("@name" for abstract names, "" for
 * unnamed), or {"family":"AF_<n>","addrlen":N} for an undecoded address.
 */
CONNSCOPE_API std::string to_json(const SocketAddress &address);

/** One line of JSON, "event":"security_socket_connect", without a newline. */
CONNSCOPE_API std::string to_json(const SecuritySocketConnect &event);

/** One line of JSON, "event":"net_tcp_connect", without a newline. */
CONNSCOPE_API std::string to_json(const NetTcpConnect &event);

/** A ConnectOutcome as the JSON object `connscope-trace --json` prints (the "connect_outcome" record). */
CONNSCOPE_API std::string to_json(const ConnectOutcome &event);

/** The version of the JSON contract (docs/schema.json), the "schema" field of every record. */
constexpr int json_schema_version = 1;

/**
 * One line of JSON, "event":"stats": "events" and "lost" and one field per
 * Stats member, plus "backend" when backend is not empty.
 */
CONNSCOPE_API std::string to_json(const Stats &stats, std::string_view backend = {});

/**
 * One line of JSON, "event":"health": "kind" (canary_missed, link_detached,
 * reattached, reattach_failed), "what", "message" and "timestamp" (ns since the epoch).
 */
CONNSCOPE_API std::string to_json(const HealthEvent &event);

/** The JSON name of a HealthKind: "canary_missed", "link_detached", "reattached", "reattach_failed". */
CONNSCOPE_API const char *health_kind_name(HealthKind kind) noexcept;

} // namespace connscope
