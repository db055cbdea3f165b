// libFuzzer entry point: every byte string is a ring record as the ring hands
// it over (bpf/wire.h). The decoder must reject or decode it without reading
// past the bytes given, and whatever it decodes must format as valid JSON.
#include <connscope/dns.hpp>
#include <connscope/format.hpp>

#include "records/decoder.hpp"

#include <cctype>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace {

using namespace connscope;

void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

// Strict UTF-8 (no overlongs, surrogates or values past U+10FFFF); the
// length of the sequence at s[i], or 0.
std::size_t utf8_at(std::string_view s, std::size_t i)
{
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    if (c < 0x80)
        return 1;
    std::size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (i + len > s.size() || b(i + 1) < lo || b(i + 1) > hi)
        return 0;
    for (std::size_t k = 2; k < len; ++k)
        if ((b(i + k) & 0xc0) != 0x80)
            return 0;
    return len;
}

// A cheap stand-in for a JSON parser: valid UTF-8, no raw control bytes in
// strings, only known escapes, quotes closed, {} and [] balanced and nested.
bool plausible_json(std::string_view s)
{
    std::string stack;
    bool in_string = false;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t len = utf8_at(s, i);
        if (len == 0)
            return false;
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (in_string) {
            if (c < 0x20)
                return false;
            if (c == '"') {
                in_string = false;
            } else if (c == '\\') {
                if (i + 1 >= s.size())
                    return false;
                const char e = s[i + 1];
                if (e == 'u') {
                    if (i + 6 > s.size())
                        return false;
                    for (std::size_t k = i + 2; k < i + 6; ++k)
                        if (!std::isxdigit(static_cast<unsigned char>(s[k])))
                            return false;
                    i += 6;
                    continue;
                }
                if (std::strchr("\"\\/bfnrt", e) == nullptr || e == '\0')
                    return false;
                i += 2;
                continue;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            stack += static_cast<char>(c);
        } else if (c == '}' || c == ']') {
            if (stack.empty() || stack.back() != (c == '}' ? '{' : '['))
                return false;
            stack.pop_back();
        } else if (c >= 0x80 || c < 0x20) {
            return false; // outside strings JSON is ASCII
        }
        i += len;
    }
    return !in_string && stack.empty() && !s.empty() && s.front() == '{' && s.back() == '}';
}

void check_address(const SocketAddress &address)
{
    check(plausible_json(to_json(address)));
    (void)to_string(address);
    (void)family_name(address);
}

// decode_sockaddr is given exactly min(addrlen, CS_SOCKADDR_MAX) bytes on
// the heap, so any read past them is an ASan finding.
void exercise_sockaddr(const std::uint8_t *data, std::size_t size)
{
    if (size < 5)
        return;
    std::uint32_t addrlen;
    std::memcpy(&addrlen, data, sizeof(addrlen));
    const bool fault = data[4] & 1;
    data += 5;
    size -= 5;
    const std::size_t avail = addrlen < CS_SOCKADDR_MAX ? addrlen : CS_SOCKADDR_MAX;
    if (avail > size)
        return;
    auto copy = std::make_unique<std::uint8_t[]>(avail);
    if (avail)
        std::memcpy(copy.get(), data, avail);
    const SocketAddress address = detail::decode_sockaddr(copy.get(), addrlen, fault);
    if (fault)
        check(std::holds_alternative<UnknownAddress>(address));
    check_address(address);
}

void exercise_connect(const std::uint8_t *data, std::size_t size, const std::vector<std::string> &names)
{
    SecuritySocketConnect ev;
    if (!detail::decode_connect(data, size, static_cast<std::int64_t>(size) * 7919 - 1000000, ev))
        return;
    cs_connect_record rec;
    check(size >= sizeof(rec));
    std::memcpy(&rec, data, sizeof(rec));
    check(ev.process.pid == rec.proc.pid && ev.sockfd == rec.sockfd);
    check(ev.process.comm.size() < CS_COMM_LEN + 1);
    check_address(ev.remote_addr);
    check(plausible_json(to_json(ev)));
    (void)socket_type_name(ev.type);

    // The TCP view of it, named by whatever the DNS part of the input held.
    if (const auto *inet = std::get_if<InetEndpoint>(&ev.remote_addr)) {
        NetTcpConnect tcp;
        tcp.process = ev.process;
        tcp.sockfd = ev.sockfd;
        tcp.dst_ip = inet->ip.to_string();
        tcp.dst_port = inet->port;
        tcp.results = names;
        check(plausible_json(to_json(tcp)));
    }
}

void exercise_outcome(const std::uint8_t *data, std::size_t size)
{
    ConnectOutcome ev;
    if (!detail::decode_outcome(data, size, static_cast<std::int64_t>(size) * 7919 - 1000000, ev))
        return;
    cs_outcome_record rec;
    check(size >= sizeof(rec));
    std::memcpy(&rec, data, sizeof(rec));
    check(ev.connect_id == rec.out.connect_id && ev.connect_id != 0);
    check(ev.lsm_error >= 0 && ev.tcp_error >= 0);
    if (ev.local)
        check_address(SocketAddress{*ev.local});
    check(plausible_json(to_json(ev)));
    (void)outcome_name(ev);
}

// Answer names parsed from a DNS record's payload (empty if none).
std::vector<std::string> exercise_dns(const std::uint8_t *data, std::size_t size)
{
    std::vector<std::string> names;
    detail::DnsRecordView view;
    if (!detail::decode_dns(data, size, view))
        return names;
    const auto *end = data + size;
    check(view.payload == data + sizeof(cs_dns_record));
    check(view.header.captured <= static_cast<std::size_t>(end - view.payload));
    // Copied to a buffer of exactly captured bytes: the parser may not stray.
    auto payload = std::make_unique<std::uint8_t[]>(view.header.captured);
    if (view.header.captured)
        std::memcpy(payload.get(), view.payload, view.header.captured);
    DnsMessage message;
    if (parse_dns_message(payload.get(), view.header.captured, message) != DnsParseError::ok)
        return names;
    for (const auto &q : message.questions)
        names.push_back(q);
    for (const auto &a : message.answers)
        names.push_back(a.type == DnsType::cname ? a.target : a.name);
    return names;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    // The ring hands over a pointer and a length; a copy of exactly that
    // length makes every over-read visible.
    auto record = std::make_unique<std::uint8_t[]>(size ? size : 1);
    if (size)
        std::memcpy(record.get(), data, size);

    std::vector<std::string> names;
    switch (detail::record_type(record.get(), size)) {
    case CS_REC_CONNECT:
        exercise_connect(record.get(), size, names);
        break;
    case CS_REC_DNS:
        names = exercise_dns(record.get(), size);
        break;
    case CS_REC_OUTCOME:
        exercise_outcome(record.get(), size);
        break;
    default:
        // Not a whole record: both decoders must say no.
        SecuritySocketConnect ev;
        detail::DnsRecordView view;
        ConnectOutcome outcome;
        check(!detail::decode_connect(record.get(), size, 0, ev));
        check(!detail::decode_dns(record.get(), size, view));
        check(!detail::decode_outcome(record.get(), size, 0, outcome));
        break;
    }

    // A DNS record followed by a connect record, as they come in one ring.
    if (size >= sizeof(cs_header)) {
        cs_header hdr;
        std::memcpy(&hdr, record.get(), sizeof(hdr));
        if (hdr.type == CS_REC_DNS && hdr.size >= sizeof(hdr) && hdr.size < size) {
            const std::size_t rest = size - hdr.size;
            exercise_connect(record.get() + hdr.size, rest, names);
        }
    }

    // The same bytes as a raw sockaddr: 4 bytes addrlen, a fault flag, the address.
    exercise_sockaddr(data, size);
    return 0;
}
