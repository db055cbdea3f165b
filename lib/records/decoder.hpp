// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Turns ring records (bpf/wire.h) into public event types. Every length is
// checked against the bytes the ring handed over: a record that does not fit
// is rejected (and counted by the caller), never read past.
#pragma once

#include <connscope/events.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

#include "wire.h"

namespace connscope::detail {

// A record's bpf_ktime_get_boot_ns() stamp as ns since the Unix epoch, given
// the boot-to-realtime offset; saturates at 0 and UINT64_MAX, so any value a
// record carries has a defined result.
std::uint64_t boot_to_epoch_ns(std::uint64_t boot_ns, std::int64_t epoch_offset_ns);

// The record's type if its header is whole and its size fits, else 0.
std::uint32_t record_type(const void *data, std::size_t size);

// The rules for an address the caller passed (documented in docs/guide.md):
// AF_INET needs addrlen >= 16 and AF_INET6 >= 24 (the kernel's own minimums;
// the scope id is read only when addrlen >= 28); AF_UNIX with addrlen 2 is
// unnamed, a first path byte NUL makes an abstract name of the addrlen-3
// bytes after it, else the path runs to the first NUL or the end (108 bytes
// without a NUL are a valid path). Anything else is UnknownAddress.
SocketAddress decode_sockaddr(const std::uint8_t *addr, std::uint32_t addrlen, bool fault);
// The same into out. A UNIX name's string is kept in spare_name while out
// holds another kind, and used again: a steady state allocates nothing.
void decode_sockaddr(const std::uint8_t *addr, std::uint32_t addrlen, bool fault, SocketAddress &out,
                     std::string &spare_name);

// A connect record into an event; false if it is malformed. The event's
// strings are reused (spare_name: as for decode_sockaddr; the Session keeps
// one so that decoding allocates nothing in a steady state).
bool decode_connect(const void *data, std::size_t size, std::int64_t epoch_offset_ns,
                    SecuritySocketConnect &out, std::string *spare_name = nullptr);

// An outcome record into an event; false if it is malformed.
bool decode_outcome(const void *data, std::size_t size, std::int64_t epoch_offset_ns, ConnectOutcome &out);

struct DnsRecordView {
    cs_dns_record header;
    const std::uint8_t *payload;
};

// A DNS record's header and payload; false if it is malformed.
bool decode_dns(const void *data, std::size_t size, DnsRecordView &out);

} // namespace connscope::detail
