// Private to lib/dns: an answer section turned into (address, name chain, TTL)
// bindings, the correlator's unit of insertion.
#pragma once

#include <connscope/dns.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace connscope::dns {

struct Binding {
    IpAddress ip;
    std::uint32_t first; // into the builder's names
    std::uint32_t count;
    std::uint32_t ttl;   // the shortest along the chain
};

// Keeps its scratch between messages, so the common path does not allocate.
// The names point into the message: valid until it changes.
class ChainBuilder {
public:
    void build(const DnsMessage &m);
    const std::vector<Binding> &bindings() const noexcept { return bindings_; }
    const std::string &name(std::size_t i) const noexcept { return *chain_[i]; }

private:
    std::size_t find_cname(const DnsMessage &m, const std::string &key, bool by_target) const;
    bool in_chain(std::size_t first, const std::string &name) const;
    void add_binding(const IpAddress &ip, std::size_t first, std::size_t count, std::uint32_t ttl);

    std::vector<std::uint32_t> cnames_, addrs_;
    std::vector<std::uint32_t> by_name_, by_target_;
    std::vector<char> used_;
    std::vector<const std::string *> chain_;
    std::vector<Binding> bindings_;
};

} // namespace connscope::dns
