// Builds DNS messages byte by byte for the unit tests and the benchmark.
#pragma once

#include <connscope/address.hpp>

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace dnstest {

using Bytes = std::vector<std::uint8_t>;

inline void put16(Bytes &b, std::uint16_t v)
{
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
}

inline void put32(Bytes &b, std::uint32_t v)
{
    put16(b, static_cast<std::uint16_t>(v >> 16));
    put16(b, static_cast<std::uint16_t>(v));
}

// Names are written label by label from "a.b.c"; an empty name is the root.
class Builder {
public:
    explicit Builder(std::uint16_t id = 0x1234, std::uint16_t flags = 0x8180) : id_(id), flags_(flags) {}

    // With compression on, every suffix already written is replaced by a pointer.
    Builder &compress(bool on = true)
    {
        compress_ = on;
        return *this;
    }
    Builder &question(const std::string &name, std::uint16_t type = 1)
    {
        questions_.push_back({name, type});
        return *this;
    }
    Builder &a(const std::string &name, const std::string &ip, std::uint32_t ttl = 300)
    {
        return address(name, ip, ttl);
    }
    Builder &aaaa(const std::string &name, const std::string &ip, std::uint32_t ttl = 300)
    {
        return address(name, ip, ttl);
    }
    Builder &cname(const std::string &name, const std::string &target, std::uint32_t ttl = 300)
    {
        answers_.push_back({name, 5, 1, ttl, {}, target, true});
        return *this;
    }
    Builder &record(const std::string &name, std::uint16_t type, std::uint32_t ttl, Bytes rdata,
                    std::uint16_t klass = 1)
    {
        answers_.push_back({name, type, klass, ttl, std::move(rdata), {}, false});
        return *this;
    }

    Bytes build()
    {
        Bytes b;
        suffixes_.clear();
        put16(b, id_);
        put16(b, flags_);
        put16(b, static_cast<std::uint16_t>(questions_.size()));
        put16(b, static_cast<std::uint16_t>(answers_.size()));
        put16(b, 0);
        put16(b, 0);
        for (const auto &q : questions_) {
            name(b, q.name);
            put16(b, q.type);
            put16(b, 1);
        }
        for (const auto &r : answers_) {
            name(b, r.name);
            put16(b, r.type);
            put16(b, r.klass);
            put32(b, r.ttl);
            if (r.has_target) {
                const std::size_t len_at = b.size();
                put16(b, 0);
                name(b, r.target);
                const std::size_t len = b.size() - len_at - 2;
                b[len_at] = static_cast<std::uint8_t>(len >> 8);
                b[len_at + 1] = static_cast<std::uint8_t>(len);
            } else {
                put16(b, static_cast<std::uint16_t>(r.rdata.size()));
                b.insert(b.end(), r.rdata.begin(), r.rdata.end());
            }
        }
        return b;
    }

private:
    struct Question {
        std::string name;
        std::uint16_t type;
    };
    struct Answer {
        std::string name;
        std::uint16_t type;
        std::uint16_t klass;
        std::uint32_t ttl;
        Bytes rdata;
        std::string target;
        bool has_target;
    };

    Builder &address(const std::string &name, const std::string &ip, std::uint32_t ttl)
    {
        auto parsed = connscope::IpAddress::parse(ip);
        if (!parsed)
            throw std::invalid_argument("bad test address " + ip);
        const bool v4 = parsed->family == connscope::IpAddress::Family::v4;
        Bytes rdata(parsed->bytes.begin(), parsed->bytes.begin() + (v4 ? 4 : 16));
        return record(name, v4 ? 1 : 28, ttl, std::move(rdata));
    }

    void name(Bytes &b, const std::string &text)
    {
        std::size_t pos = 0;
        while (pos < text.size()) {
            const std::string suffix = text.substr(pos);
            if (compress_) {
                auto it = suffixes_.find(suffix);
                if (it != suffixes_.end()) {
                    put16(b, static_cast<std::uint16_t>(0xc000 | it->second));
                    return;
                }
                if (b.size() < 0x4000)
                    suffixes_.emplace(suffix, b.size());
            }
            std::size_t dot = text.find('.', pos);
            if (dot == std::string::npos)
                dot = text.size();
            b.push_back(static_cast<std::uint8_t>(dot - pos));
            b.insert(b.end(), text.begin() + static_cast<std::ptrdiff_t>(pos),
                     text.begin() + static_cast<std::ptrdiff_t>(dot));
            pos = dot + 1;
        }
        b.push_back(0);
    }

    std::uint16_t id_;
    std::uint16_t flags_;
    bool compress_ = false;
    std::vector<Question> questions_;
    std::vector<Answer> answers_;
    std::map<std::string, std::size_t> suffixes_;
};

// A message framed for DNS over TCP: the 2-byte length prefix, then the message.
inline Bytes tcp_frame(const Bytes &message)
{
    Bytes b;
    put16(b, static_cast<std::uint16_t>(message.size()));
    b.insert(b.end(), message.begin(), message.end());
    return b;
}

inline connscope::IpAddress ip(const std::string &text)
{
    auto parsed = connscope::IpAddress::parse(text);
    if (!parsed)
        throw std::invalid_argument("bad test address " + text);
    return *parsed;
}

// Responses captured from dnsmasq 2.90 (--cname=www.example.test,edge.cdn.test
// --host-record=edge.cdn.test,127.0.0.88,2001:db8::88 --local-ttl=30), queried
// over UDP for A (id 0x1234) and AAAA (id 0x1235) of www.example.test.
inline const Bytes captured_a_response = {
    0x12, 0x34, 0x85, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x03, 0x77, 0x77, 0x77,
    0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x01,
    0x00, 0x01, 0xc0, 0x0c, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1e, 0x00, 0x0f, 0x04, 0x65,
    0x64, 0x67, 0x65, 0x03, 0x63, 0x64, 0x6e, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0xc0, 0x2e, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1e, 0x00, 0x04, 0x7f, 0x00, 0x00, 0x58,
};
inline const Bytes captured_aaaa_response = {
    0x12, 0x35, 0x85, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x03, 0x77, 0x77, 0x77,
    0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x1c,
    0x00, 0x01, 0xc0, 0x0c, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1e, 0x00, 0x0f, 0x04, 0x65,
    0x64, 0x67, 0x65, 0x03, 0x63, 0x64, 0x6e, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0xc0, 0x2e, 0x00,
    0x1c, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1e, 0x00, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x88,
};

} // namespace dnstest
