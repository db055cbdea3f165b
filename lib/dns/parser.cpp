#include <connscope/dns.hpp>

#include <cstring>

namespace connscope {

const char *to_string(DnsParseError error) noexcept
{
    switch (error) {
    case DnsParseError::ok:
        return "ok";
    case DnsParseError::truncated:
        return "truncated";
    case DnsParseError::not_a_response:
        return "not_a_response";
    case DnsParseError::bad_label:
        return "bad_label";
    case DnsParseError::bad_pointer:
        return "bad_pointer";
    case DnsParseError::compression_loop:
        return "compression_loop";
    case DnsParseError::name_too_long:
        return "name_too_long";
    case DnsParseError::bad_rdata:
        return "bad_rdata";
    }
    return "unknown";
}

namespace {

constexpr std::size_t header_size = 12;
constexpr std::size_t max_wire_name = 255; // RFC 1035 3.1, length octets included
// Pointers must point strictly before the label sequence that holds them, so
// a chain of jumps cannot loop; the cap bounds the work of pointer-to-pointer
// chains (real messages nest two or three deep).
constexpr int max_jumps = 64;
constexpr std::uint16_t class_in = 1;

inline std::uint16_t be16(const std::uint8_t *p)
{
    return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

inline std::uint32_t be32(const std::uint8_t *p)
{
    return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
           static_cast<std::uint32_t>(p[2]) << 8 | p[3];
}

class Reader {
public:
    Reader(const std::uint8_t *data, std::size_t size) : data_(data), size_(size) {}

    // Decodes the name at pos into out (lower case, no trailing dot) and sets
    // end to the offset just past the name's bytes at pos (the first pointer
    // included). Bytes that would make the text ambiguous ('.', '\\', and
    // non-printables) are written as \DDD, the RFC 4343 presentation form.
    DnsParseError name(std::size_t pos, std::string &out, std::size_t &end) const
    {
        char text[4 * max_wire_name];
        std::size_t text_len = 0;
        std::size_t wire_len = 1; // the root label
        std::size_t segment_start = pos;
        bool jumped = false;
        int jumps = 0;

        for (;;) {
            if (pos >= size_)
                return DnsParseError::truncated;
            std::uint8_t len = data_[pos];
            if (len == 0) {
                if (!jumped)
                    end = pos + 1;
                break;
            }
            switch (len & 0xc0) {
            case 0xc0: {
                if (pos + 1 >= size_)
                    return DnsParseError::truncated;
                std::size_t target = static_cast<std::size_t>(len & 0x3f) << 8 | data_[pos + 1];
                if (target >= size_ || target >= pos)
                    return DnsParseError::bad_pointer;
                if (target >= segment_start || ++jumps > max_jumps)
                    return DnsParseError::compression_loop;
                if (!jumped)
                    end = pos + 2;
                jumped = true;
                pos = target;
                segment_start = target;
                continue;
            }
            case 0x00:
                break;
            default:
                return DnsParseError::bad_label;
            }
            wire_len += 1u + len;
            if (wire_len > max_wire_name)
                return DnsParseError::name_too_long;
            if (pos + 1 + len > size_)
                return DnsParseError::truncated;
            if (text_len != 0)
                text[text_len++] = '.';
            const std::uint8_t *label = data_ + pos + 1;
            for (std::size_t i = 0; i < len; ++i) {
                std::uint8_t c = label[i];
                if (c >= 'A' && c <= 'Z') {
                    text[text_len++] = static_cast<char>(c | 0x20);
                } else if (c > 0x20 && c < 0x7f && c != '.' && c != '\\') {
                    text[text_len++] = static_cast<char>(c);
                } else {
                    text[text_len++] = '\\';
                    text[text_len++] = static_cast<char>('0' + c / 100);
                    text[text_len++] = static_cast<char>('0' + c / 10 % 10);
                    text[text_len++] = static_cast<char>('0' + c % 10);
                }
            }
            pos += 1u + len;
        }
        out.assign(text, text_len);
        return DnsParseError::ok;
    }

    bool has(std::size_t pos, std::size_t n) const { return pos <= size_ && n <= size_ - pos; }

private:
    const std::uint8_t *data_;
    std::size_t size_;
};

} // namespace

DnsParseError parse_dns_message(const std::uint8_t *data, std::size_t size, DnsMessage &out)
{
    if (data == nullptr || size < header_size)
        return DnsParseError::truncated;
    const std::uint16_t flags = be16(data + 2);
    if ((flags & 0x8000) == 0)
        return DnsParseError::not_a_response;
    const std::size_t qdcount = be16(data + 4);
    const std::size_t ancount = be16(data + 6);
    // A question takes at least 5 bytes and a record at least 11: reject
    // impossible counts before doing any work for them.
    if (qdcount * 5 + ancount * 11 > size - header_size)
        return DnsParseError::truncated;

    out.id = be16(data);
    out.rcode = static_cast<std::uint8_t>(flags & 0x0f);

    const Reader reader(data, size);
    std::size_t pos = header_size;
    DnsParseError err;

    // Existing strings are overwritten rather than cleared so a DnsMessage
    // reused across calls keeps its buffers: no allocation per packet.
    if (out.questions.size() < qdcount)
        out.questions.resize(qdcount);
    for (std::size_t i = 0; i < qdcount; ++i) {
        std::size_t end = 0;
        if ((err = reader.name(pos, out.questions[i], end)) != DnsParseError::ok)
            return err;
        if (!reader.has(end, 4))
            return DnsParseError::truncated;
        pos = end + 4;
    }
    out.questions.resize(qdcount);

    std::size_t kept = 0;
    for (std::size_t i = 0; i < ancount; ++i) {
        if (kept == out.answers.size())
            out.answers.emplace_back();
        DnsRecord &rec = out.answers[kept];
        std::size_t end = 0;
        if ((err = reader.name(pos, rec.name, end)) != DnsParseError::ok)
            return err;
        if (!reader.has(end, 10))
            return DnsParseError::truncated;
        const std::uint8_t *fixed = data + end;
        const std::uint16_t type = be16(fixed);
        const std::uint16_t klass = be16(fixed + 2);
        std::uint32_t ttl = be32(fixed + 4);
        const std::size_t rdlength = be16(fixed + 8);
        const std::size_t rdata = end + 10;
        if (!reader.has(rdata, rdlength))
            return DnsParseError::truncated;
        pos = rdata + rdlength;

        // RFC 2181 8: a TTL with the top bit set is to be read as zero.
        if (ttl & 0x80000000u)
            ttl = 0;
        if (klass != class_in)
            continue;
        switch (type) {
        case static_cast<std::uint16_t>(DnsType::a):
            if (rdlength != 4)
                return DnsParseError::bad_rdata;
            rec.address = IpAddress::v4(data + rdata);
            rec.target.clear();
            break;
        case static_cast<std::uint16_t>(DnsType::aaaa):
            if (rdlength != 16)
                return DnsParseError::bad_rdata;
            rec.address = IpAddress::v6(data + rdata);
            rec.target.clear();
            break;
        case static_cast<std::uint16_t>(DnsType::cname): {
            if (rdlength == 0)
                return DnsParseError::bad_rdata;
            // The name may point back anywhere before it, but its own bytes
            // must fill the RDATA exactly: read it with the message cut at
            // the RDATA's end.
            std::size_t target_end = 0;
            err = Reader(data, pos).name(rdata, rec.target, target_end);
            if (err == DnsParseError::truncated || target_end != pos)
                return DnsParseError::bad_rdata;
            if (err != DnsParseError::ok)
                return err;
            rec.address = IpAddress{};
            break;
        }
        default:
            continue;
        }
        rec.type = static_cast<DnsType>(type);
        rec.ttl = ttl;
        ++kept;
    }
    out.answers.resize(kept);
    return DnsParseError::ok;
}

} // namespace connscope
