// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "options_impl.hpp"

#include <connscope/error.hpp>

#include "kernel/backend.hpp"
#include "wire.h"

#include <algorithm>
#include <cerrno>
#include <unistd.h>

namespace connscope {

const std::vector<std::string> &backend_names()
{
    static const std::vector<std::string> names = [] {
        std::vector<std::string> out;
        for (const auto &b : detail::backend_table())
            out.emplace_back(b.name);
        return out;
    }();
    return names;
}

namespace {

std::string valid_backends_text()
{
    std::string out = "auto";
    for (const auto &n : backend_names())
        out += ", " + n;
    return out;
}

} // namespace

std::vector<std::string> parse_backend_list(const std::string &text)
{
    std::vector<std::string> names;
    std::size_t start = 0;
    while (start <= text.size()) {
        auto comma = text.find(',', start);
        auto item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        if (item.empty())
            throw Error(EINVAL, "empty backend name in '" + text + "': valid backends are " +
                                    valid_backends_text());
        names.push_back(item);
        if (comma == std::string::npos)
            break;
        start = comma + 1;
    }
    detail::expand_backends(names); // validates
    return names;
}

namespace detail {

std::size_t page_size() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

std::vector<const BackendDescription *> expand_backends(const std::vector<std::string> &names)
{
    if (names.empty())
        throw Error(EINVAL, "no backend given: name one of " + valid_backends_text());
    std::vector<const BackendDescription *> out;
    auto add = [&out](const BackendDescription *b) {
        if (std::find(out.begin(), out.end(), b) == out.end())
            out.push_back(b);
    };
    for (const auto &n : names) {
        if (n == "auto") {
            for (const auto &b : backend_table())
                add(&b);
        } else if (const auto *b = find_backend(n)) {
            add(b);
        } else {
            throw Error(EINVAL, "unknown backend '" + n + "': valid backends are " + valid_backends_text());
        }
    }
    return out;
}

void validate(const Options &o)
{
    constexpr std::size_t ring_max = std::size_t{1} << 30;
    const std::size_t page = page_size();
    const bool pow2 = o.ring_size && (o.ring_size & (o.ring_size - 1)) == 0;
    if (!pow2 || o.ring_size < page || o.ring_size > ring_max) {
        std::size_t nearest = page;
        while (nearest < o.ring_size && nearest < ring_max)
            nearest <<= 1;
        if (nearest > page && nearest - o.ring_size > o.ring_size - nearest / 2)
            nearest >>= 1;
        throw Error(EINVAL, "ring size " + std::to_string(o.ring_size) +
                                " is not a power-of-two multiple of the page size (" + std::to_string(page) +
                                ") up to 1 GiB; the nearest valid size is " + std::to_string(nearest));
    }
    if (o.max_latency.count() < 1 || o.max_latency.count() > 10000)
        throw Error(EINVAL, "max_latency " + std::to_string(o.max_latency.count()) +
                                " ms is out of range: give 1 to 10000 ms");
    if (o.startup_timeout.count() < 100 || o.startup_timeout.count() > 60000)
        throw Error(EINVAL, "startup_timeout " + std::to_string(o.startup_timeout.count()) +
                                " ms is out of range: give 100 to 60000 ms");
    const auto interval = o.liveness_interval.count();
    if (interval != 0 && (interval < 1000 || interval > 3600000 || interval <= o.max_latency.count()))
        throw Error(EINVAL, "liveness_interval " + std::to_string(interval) +
                                " ms is out of range: give 0 (off), or 1000 to 3600000 ms and more than "
                                "max_latency (" + std::to_string(o.max_latency.count()) + " ms)");
    if (o.dns.enabled) {
        if (o.dns.ports.empty() || o.dns.ports.size() > CS_DNS_PORTS_MAX)
            throw Error(EINVAL, "DNS ports: give 1 to " + std::to_string(CS_DNS_PORTS_MAX) + " ports, not " +
                                    std::to_string(o.dns.ports.size()));
        for (auto p : o.dns.ports)
            if (p == 0)
                throw Error(EINVAL, "DNS port 0 is not a port: give 1 to 65535");
        if (o.dns.payload_max < 64 || o.dns.payload_max > CS_DNS_PAYLOAD_MAX)
            throw Error(EINVAL, "DNS payload bound " + std::to_string(o.dns.payload_max) +
                                    " is out of range: give 64 to " + std::to_string(CS_DNS_PAYLOAD_MAX));
    }
}

} // namespace detail
} // namespace connscope
