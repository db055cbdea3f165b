// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The text forms of addresses, appended to a string the caller keeps: a
// string reused from event to event stops allocating once it has grown to
// the longest text seen, so the consumer's path (Session, C API) allocates
// nothing in a steady state. The public to_string() forms are built on these.
#pragma once

#include <connscope/address.hpp>

#include <string>

namespace connscope::detail {

// As IpAddress::to_string(): dotted quad, or RFC 5952 IPv6.
void append_ip(std::string &out, const IpAddress &ip);

// As connscope::to_string(const SocketAddress &).
void append_address(std::string &out, const SocketAddress &address);

// Replaces out's text with the IP's, in out's own buffer.
inline void assign_ip(std::string &out, const IpAddress &ip)
{
    out.clear();
    append_ip(out, ip);
}

} // namespace connscope::detail
