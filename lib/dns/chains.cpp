#include "chains.hpp"

#include <algorithm>
#include <cstdint>

namespace connscope::dns {
namespace {

// Real resolvers give up on chains far shorter than this; it bounds the work
// a hostile message can cause per record.
constexpr std::size_t max_chain = 16;
// Messages have one question; more are legal but rare and cost a pass each.
constexpr std::size_t max_questions = 8;
// Above this many CNAMEs, chain links are found by binary search.
constexpr std::size_t linear_cname_limit = 16;

} // namespace

std::size_t ChainBuilder::find_cname(const DnsMessage &m, const std::string &key,
                                          bool by_target) const
{
    const auto field = [&](std::uint32_t i) -> const std::string & {
        return by_target ? m.answers[i].target : m.answers[i].name;
    };
    if (cnames_.size() <= linear_cname_limit) {
        for (std::uint32_t i : cnames_)
            if (field(i) == key)
                return i;
        return SIZE_MAX;
    }
    const auto &sorted = by_target ? by_target_ : by_name_;
    auto it = std::lower_bound(sorted.begin(), sorted.end(), key,
                               [&](std::uint32_t i, const std::string &k) { return field(i) < k; });
    return (it != sorted.end() && field(*it) == key) ? *it : SIZE_MAX;
}

bool ChainBuilder::in_chain(std::size_t first, const std::string &name) const
{
    for (std::size_t i = first; i < chain_.size(); ++i)
        if (*chain_[i] == name)
            return true;
    return false;
}

void ChainBuilder::add_binding(const IpAddress &ip, std::size_t first, std::size_t count,
                                    std::uint32_t ttl)
{
    bindings_.push_back(Binding{ip, static_cast<std::uint32_t>(first),
                                static_cast<std::uint32_t>(count), ttl});
}

// Turns the answer section into (address, name chain, ttl) bindings. Chains
// are followed from each question forward through the CNAMEs, so record order
// in the message does not matter; records no question leads to get the chain
// that leads backwards to them.
void ChainBuilder::build(const DnsMessage &m)
{
    cnames_.clear();
    addrs_.clear();
    chain_.clear();
    bindings_.clear();
    for (std::uint32_t i = 0; i < m.answers.size(); ++i)
        (m.answers[i].type == DnsType::cname ? cnames_ : addrs_).push_back(i);
    if (addrs_.empty())
        return;
    if (cnames_.size() > linear_cname_limit) {
        by_name_ = cnames_;
        by_target_ = cnames_;
        const auto &a = m.answers;
        // Stable, so the first of duplicate CNAMEs wins as in the linear scan.
        std::stable_sort(by_name_.begin(), by_name_.end(),
                         [&](std::uint32_t x, std::uint32_t y) { return a[x].name < a[y].name; });
        std::stable_sort(by_target_.begin(), by_target_.end(),
                         [&](std::uint32_t x, std::uint32_t y) { return a[x].target < a[y].target; });
    }
    used_.assign(addrs_.size(), 0);

    const std::size_t nq = std::min(m.questions.size(), max_questions);
    for (std::size_t q = 0; q < nq; ++q) {
        const std::string &question = m.questions[q];
        if (std::find(m.questions.begin(), m.questions.begin() + q, question) !=
            m.questions.begin() + q)
            continue;
        const std::size_t first = chain_.size();
        chain_.push_back(&question);
        std::uint32_t ttl = UINT32_MAX;
        while (chain_.size() - first < max_chain) {
            const std::size_t c = find_cname(m, *chain_.back(), false);
            if (c == SIZE_MAX || in_chain(first, m.answers[c].target))
                break;
            ttl = std::min(ttl, m.answers[c].ttl);
            chain_.push_back(&m.answers[c].target);
        }
        const std::string &owner = *chain_.back();
        bool any = false;
        for (std::size_t k = 0; k < addrs_.size(); ++k) {
            const DnsRecord &r = m.answers[addrs_[k]];
            // A record reached from two questions binds to both chains.
            if (r.name != owner)
                continue;
            used_[k] = 1;
            // Every address of the owner shares the one chain.
            add_binding(r.address, first, chain_.size() - first, std::min(ttl, r.ttl));
            any = true;
        }
        if (!any)
            chain_.resize(first);
    }

    for (std::size_t k = 0; k < addrs_.size(); ++k) {
        if (used_[k])
            continue;
        const DnsRecord &r = m.answers[addrs_[k]];
        const std::size_t first = chain_.size();
        chain_.push_back(&r.name);
        std::uint32_t ttl = r.ttl;
        while (chain_.size() - first < max_chain) {
            const std::size_t c = find_cname(m, *chain_.back(), true);
            if (c == SIZE_MAX || in_chain(first, m.answers[c].name))
                break;
            ttl = std::min(ttl, m.answers[c].ttl);
            chain_.push_back(&m.answers[c].name);
        }
        std::reverse(chain_.begin() + static_cast<std::ptrdiff_t>(first), chain_.end());
        add_binding(r.address, first, chain_.size() - first, ttl);
    }
}

} // namespace connscope::dns
