#include "index_table.hpp"

#include <connscope/dns.hpp>
#include <connscope/error.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>

namespace connscope {
namespace dns {
namespace {

// Real resolvers give up on chains far shorter than this; it bounds the work
// a hostile message can cause per record.
constexpr std::size_t max_chain = 16;
// Messages have one question; more are legal but rare and cost a pass each.
constexpr std::size_t max_questions = 8;
// Above this many CNAMEs, chain links are found by binary search.
constexpr std::size_t linear_cname_limit = 16;
constexpr std::uint64_t ns_per_s = 1000000000ULL;
// Expired entries removed from the LRU tail per observe(): keeps memory near
// the live set without a timer.
constexpr int reap_per_observe = 4;
// Second chances given per eviction before the tail goes regardless: bounds
// the work of one insert when everything was used recently.
constexpr int max_second_chances = 64;
constexpr std::uint64_t max_expiry = (std::uint64_t{1} << 63) - 1; // year 2262

// One cache line. Most names fit inline, so comparing or copying a name
// costs one miss, not two, and no allocation of its own.
struct alignas(64) Name {
    static constexpr std::size_t inline_capacity = 48;

    std::uint32_t hash = 0;
    std::uint32_t refs = 0; // entries naming it; next free slot when free
    std::uint32_t size = 0;
    union {
        char inline_text[inline_capacity];
        char *heap_text;
    };

    Name() : inline_text{} {}
    std::string_view text() const noexcept
    {
        return {size <= inline_capacity ? inline_text : heap_text, size};
    }
    // Returns the bytes allocated outside the slot.
    std::size_t assign(std::string_view s)
    {
        release();
        if (s.size() <= inline_capacity) {
            std::memcpy(inline_text, s.data(), s.size());
        } else {
            heap_text = new char[s.size()];
            std::memcpy(heap_text, s.data(), s.size());
        }
        size = static_cast<std::uint32_t>(s.size());
        return heap_bytes();
    }
    std::size_t heap_bytes() const noexcept
    {
        // A malloc chunk: the bytes plus an 8-byte header, rounded to 16.
        return size > inline_capacity ? ((size + 8 + 15) & ~std::size_t{15}) : 0;
    }
    void release() noexcept
    {
        if (size > inline_capacity)
            delete[] heap_text;
        size = 0;
    }
};
static_assert(sizeof(Name) == 64, "a name slot is one cache line");

// 32 bytes: IpAddress is 17 bytes with alignment 1.
struct Group {
    std::uint64_t netns = 0;
    IpAddress ip;
    std::uint32_t head = nil_id; // newest entry; next free slot when free
};

// 32 bytes. Links are slab indices: half the size of pointers and stable
// across reallocation.
//
// Recency is kept CLOCK-style: a use sets `referenced` instead of moving the
// entry in the LRU list, and eviction gives referenced entries at the tail a
// second chance. Lookups then write one bit instead of touching two
// neighbours that are likely cache misses.
struct Entry {
    std::uint64_t expiry_ns : 63;
    std::uint64_t referenced : 1;
    std::uint32_t name = nil_id;
    std::uint32_t group = nil_id;
    std::uint32_t gprev = nil_id, gnext = nil_id; // within the group, newest first
    std::uint32_t lprev = nil_id, lnext = nil_id; // global LRU, most recent first; lnext = next free
};

IpAddress normalized(const IpAddress &ip)
{
    IpAddress key = ip.unmapped();
    if (key.family == IpAddress::Family::v4)
        std::fill(key.bytes.begin() + 4, key.bytes.end(), std::uint8_t{0});
    return key;
}

class DefaultCorrelator final : public DnsCorrelator {
public:
    explicit DefaultCorrelator(const DnsCacheOptions &options)
        : grace_s_(options.grace.count() < 0 ? 0 : static_cast<std::uint64_t>(options.grace.count())),
          max_entries_(std::min<std::size_t>(options.max_entries, nil_id - 1)),
          seed_(mix64(static_cast<std::uint64_t>(
                          std::chrono::steady_clock::now().time_since_epoch().count()) ^
                      reinterpret_cast<std::uintptr_t>(this)))
    {
        if (options.max_entries == 0)
            throw Error(EINVAL, "default DNS correlator: max_entries is 0; it must be at least 1");
    }

    ~DefaultCorrelator() override
    {
        for (Name &n : names_)
            n.release(); // free slots have size 0: a no-op
    }
    DefaultCorrelator(const DefaultCorrelator &) = delete;
    DefaultCorrelator &operator=(const DefaultCorrelator &) = delete;

    void observe(std::uint64_t netns, std::uint64_t time_ns, const DnsMessage &answer) override;
    std::vector<std::string> lookup(std::uint64_t netns, const IpAddress &address,
                                    std::uint64_t now_ns) override;
    DnsCorrelatorStats stats() const override;

private:
    struct Binding {
        IpAddress ip;
        std::uint32_t first; // into chain_
        std::uint32_t count;
        std::uint32_t ttl;
    };

    void build_bindings(const DnsMessage &m);
    bool refresh_if_current(std::uint32_t group, const Binding &b, std::uint64_t expiry_ns);
    std::size_t find_cname(const DnsMessage &m, const std::string &key, bool by_target) const;
    bool in_chain(std::size_t first, const std::string &name) const;
    void add_binding(const IpAddress &ip, std::size_t first, std::size_t count, std::uint32_t ttl);

    void upsert(std::uint64_t netns, const IpAddress &key, std::uint32_t group_hash,
                std::string_view name, std::uint64_t expiry_ns);
    std::uint32_t find_group(std::uint32_t hash, std::uint64_t netns, const IpAddress &key) const;
    std::uint32_t find_name(std::uint32_t hash, std::string_view name) const;
    std::uint32_t find_entry(std::uint32_t group, std::uint32_t name) const;
    std::uint32_t group_hash(std::uint64_t netns, const IpAddress &key) const;
    std::uint32_t name_hash(std::string_view name) const;
    static std::uint32_t entry_hash(std::uint32_t group, std::uint32_t name);

    void remove_entry(std::uint32_t e);
    void evict_lru();
    void reap(std::uint64_t now_ns, int budget);
    void lru_unlink(std::uint32_t e);
    void lru_push_front(std::uint32_t e);
    void group_unlink(std::uint32_t e);
    void group_push_front(std::uint32_t e);


    const std::uint64_t grace_s_;
    const std::size_t max_entries_;
    const std::uint64_t seed_;

    std::vector<Name> names_;
    std::vector<Group> groups_;
    std::vector<Entry> entries_;
    std::uint32_t free_name_ = nil_id, free_group_ = nil_id, free_entry_ = nil_id;
    IndexTable name_index_, group_index_, entry_index_;
    std::uint32_t lru_head_ = nil_id, lru_tail_ = nil_id;
    std::size_t name_heap_bytes_ = 0;

    std::uint64_t answers_ = 0;
    std::uint64_t evictions_ = 0;

    // Scratch reused by every observe() so the common path does not allocate.
    std::vector<std::uint32_t> cnames_, addrs_;
    std::vector<std::uint32_t> by_name_, by_target_;
    std::vector<char> used_;
    std::vector<const std::string *> chain_;
    std::vector<Binding> bindings_;
};

std::uint32_t DefaultCorrelator::group_hash(std::uint64_t netns, const IpAddress &key) const
{
    std::uint64_t lo, hi;
    std::memcpy(&lo, key.bytes.data(), 8);
    std::memcpy(&hi, key.bytes.data() + 8, 8);
    std::uint64_t h = mix64(netns ^ seed_) ^ static_cast<std::uint64_t>(key.family);
    h = mix64(h ^ lo) + hi;
    return static_cast<std::uint32_t>(mix64(h));
}

std::uint32_t DefaultCorrelator::name_hash(std::string_view name) const
{
    return static_cast<std::uint32_t>(hash_bytes(name.data(), name.size(), seed_));
}

std::uint32_t DefaultCorrelator::entry_hash(std::uint32_t group, std::uint32_t name)
{
    return static_cast<std::uint32_t>(mix64(static_cast<std::uint64_t>(group) << 32 | name));
}

std::uint32_t DefaultCorrelator::find_group(std::uint32_t hash, std::uint64_t netns,
                                            const IpAddress &key) const
{
    return group_index_.find(hash, [&](std::uint32_t g) {
        return groups_[g].netns == netns && groups_[g].ip == key;
    });
}

std::uint32_t DefaultCorrelator::find_name(std::uint32_t hash, std::string_view name) const
{
    return name_index_.find(hash, [&](std::uint32_t n) { return names_[n].text() == name; });
}

std::uint32_t DefaultCorrelator::find_entry(std::uint32_t group, std::uint32_t name) const
{
    return entry_index_.find(entry_hash(group, name), [&](std::uint32_t e) {
        return entries_[e].group == group && entries_[e].name == name;
    });
}

void DefaultCorrelator::lru_unlink(std::uint32_t e)
{
    Entry &x = entries_[e];
    (x.lprev == nil_id ? lru_head_ : entries_[x.lprev].lnext) = x.lnext;
    (x.lnext == nil_id ? lru_tail_ : entries_[x.lnext].lprev) = x.lprev;
    x.lprev = x.lnext = nil_id;
}

void DefaultCorrelator::lru_push_front(std::uint32_t e)
{
    Entry &x = entries_[e];
    x.lprev = nil_id;
    x.lnext = lru_head_;
    (lru_head_ == nil_id ? lru_tail_ : entries_[lru_head_].lprev) = e;
    lru_head_ = e;
}

void DefaultCorrelator::group_unlink(std::uint32_t e)
{
    Entry &x = entries_[e];
    if (x.gprev == nil_id)
        groups_[x.group].head = x.gnext;
    else
        entries_[x.gprev].gnext = x.gnext;
    if (x.gnext != nil_id)
        entries_[x.gnext].gprev = x.gprev;
    x.gprev = x.gnext = nil_id;
}

void DefaultCorrelator::group_push_front(std::uint32_t e)
{
    Entry &x = entries_[e];
    Group &g = groups_[x.group];
    x.gprev = nil_id;
    x.gnext = g.head;
    if (g.head != nil_id)
        entries_[g.head].gprev = e;
    g.head = e;
}

void DefaultCorrelator::remove_entry(std::uint32_t e)
{
    lru_unlink(e);
    group_unlink(e);
    Entry &x = entries_[e];
    entry_index_.erase(entry_hash(x.group, x.name), e);

    const std::uint32_t g = x.group;
    if (groups_[g].head == nil_id) {
        group_index_.erase(group_hash(groups_[g].netns, groups_[g].ip), g);
        groups_[g].head = free_group_;
        free_group_ = g;
    }
    const std::uint32_t n = x.name;
    Name &name = names_[n];
    if (--name.refs == 0) {
        name_index_.erase(name.hash, n);
        name_heap_bytes_ -= name.heap_bytes();
        name.release();
        name.refs = free_name_;
        free_name_ = n;
    }
    x.name = x.group = nil_id;
    x.lnext = free_entry_;
    free_entry_ = e;
}

void DefaultCorrelator::evict_lru()
{
    for (int chances = 0; lru_tail_ != nil_id; ++chances) {
        const std::uint32_t e = lru_tail_;
        if (entries_[e].referenced && chances < max_second_chances) {
            entries_[e].referenced = 0;
            lru_unlink(e);
            lru_push_front(e);
            continue;
        }
        remove_entry(e);
        ++evictions_;
        return;
    }
}

void DefaultCorrelator::reap(std::uint64_t now_ns, int budget)
{
    while (budget-- > 0 && lru_tail_ != nil_id && entries_[lru_tail_].expiry_ns <= now_ns)
        remove_entry(lru_tail_);
}

void DefaultCorrelator::upsert(std::uint64_t netns, const IpAddress &key, std::uint32_t ghash,
                               std::string_view name, std::uint64_t expiry_ns)
{
    const std::uint32_t nhash = name_hash(name);
    std::uint32_t g = find_group(ghash, netns, key);
    std::uint32_t n = find_name(nhash, name);
    if (g != nil_id && n != nil_id) {
        const std::uint32_t e = find_entry(g, n);
        if (e != nil_id) {
            // A later answer with a shorter TTL does not cut short what an
            // earlier one promised: clients may still hold the earlier answer.
            entries_[e].expiry_ns = std::max<std::uint64_t>(entries_[e].expiry_ns, expiry_ns);
            entries_[e].referenced = 1;
            group_unlink(e);
            group_push_front(e);
            return;
        }
    }
    if (entry_index_.size() >= max_entries_) {
        evict_lru();
        // The eviction may have freed this group or name.
        g = find_group(ghash, netns, key);
        n = find_name(nhash, name);
    }
    if (g == nil_id) {
        if (free_group_ != nil_id) {
            g = free_group_;
            free_group_ = groups_[g].head;
        } else {
            g = static_cast<std::uint32_t>(groups_.size());
            groups_.emplace_back();
        }
        groups_[g].netns = netns;
        groups_[g].ip = key;
        groups_[g].head = nil_id;
        group_index_.insert(ghash, g);
    }
    if (n == nil_id) {
        if (free_name_ != nil_id) {
            n = free_name_;
            free_name_ = names_[n].refs;
        } else {
            n = static_cast<std::uint32_t>(names_.size());
            names_.emplace_back();
        }
        name_heap_bytes_ += names_[n].assign(name);
        names_[n].hash = nhash;
        names_[n].refs = 0;
        name_index_.insert(nhash, n);
    }
    std::uint32_t e;
    if (free_entry_ != nil_id) {
        e = free_entry_;
        free_entry_ = entries_[e].lnext;
    } else {
        e = static_cast<std::uint32_t>(entries_.size());
        entries_.emplace_back();
    }
    Entry &x = entries_[e];
    x.expiry_ns = expiry_ns;
    x.referenced = 0;
    x.name = n;
    x.group = g;
    ++names_[n].refs;
    entry_index_.insert(entry_hash(g, n), e);
    group_push_front(e);
    lru_push_front(e);
}

std::size_t DefaultCorrelator::find_cname(const DnsMessage &m, const std::string &key,
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

bool DefaultCorrelator::in_chain(std::size_t first, const std::string &name) const
{
    for (std::size_t i = first; i < chain_.size(); ++i)
        if (*chain_[i] == name)
            return true;
    return false;
}

void DefaultCorrelator::add_binding(const IpAddress &ip, std::size_t first, std::size_t count,
                                    std::uint32_t ttl)
{
    bindings_.push_back(Binding{ip, static_cast<std::uint32_t>(first),
                                static_cast<std::uint32_t>(count), ttl});
}

// Turns the answer section into (address, name chain, ttl) bindings. Chains
// are followed from each question forward through the CNAMEs, so record order
// in the message does not matter; records no question leads to get the chain
// that leads backwards to them.
void DefaultCorrelator::build_bindings(const DnsMessage &m)
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

// The common case: an address answered again with the chain it already
// leads with. Then only expiry and recency change, and nothing is relinked.
bool DefaultCorrelator::refresh_if_current(std::uint32_t group, const Binding &b, std::uint64_t expiry_ns)
{
    std::uint32_t e = groups_[group].head;
    for (std::uint32_t i = 0; i < b.count; ++i, e = entries_[e].gnext)
        if (e == nil_id || names_[entries_[e].name].text() != *chain_[b.first + i])
            return false;
    e = groups_[group].head;
    for (std::uint32_t i = 0; i < b.count; ++i, e = entries_[e].gnext) {
        entries_[e].expiry_ns = std::max<std::uint64_t>(entries_[e].expiry_ns, expiry_ns);
        entries_[e].referenced = 1;
    }
    return true;
}

void DefaultCorrelator::observe(std::uint64_t netns, std::uint64_t time_ns, const DnsMessage &answer)
{
    ++answers_;
    reap(time_ns, reap_per_observe);
    build_bindings(answer);
    // Inserting moves names to the front of their address's list, so walking
    // backwards leaves the first chain's question name first.
    for (auto b = bindings_.rbegin(); b != bindings_.rend(); ++b) {
        const IpAddress key = normalized(b->ip);
        const std::uint32_t ghash = group_hash(netns, key);
        const std::uint64_t life_s = std::max<std::uint64_t>(b->ttl, grace_s_);
        const std::uint64_t life_ns = life_s > max_expiry / ns_per_s ? max_expiry : life_s * ns_per_s;
        const std::uint64_t expiry = time_ns > max_expiry - life_ns ? max_expiry : time_ns + life_ns;
        const std::uint32_t g = find_group(ghash, netns, key);
        if (g != nil_id && refresh_if_current(g, *b, expiry))
            continue;
        for (std::uint32_t i = b->count; i-- > 0;)
            upsert(netns, key, ghash, *chain_[b->first + i], expiry);
    }
}

std::vector<std::string> DefaultCorrelator::lookup(std::uint64_t netns, const IpAddress &address,
                                                   std::uint64_t now_ns)
{
    std::vector<std::string> out;
    const IpAddress key = normalized(address);
    const std::uint32_t g = find_group(group_hash(netns, key), netns, key);
    if (g == nil_id)
        return out;
    std::size_t count = 0;
    for (std::uint32_t e = groups_[g].head; e != nil_id; e = entries_[e].gnext)
        ++count;
    out.reserve(count);
    for (std::uint32_t e = groups_[g].head; e != nil_id;) {
        const std::uint32_t next = entries_[e].gnext;
        if (entries_[e].expiry_ns <= now_ns) {
            remove_entry(e); // frees the group with its last entry; next is then nil
        } else {
            out.emplace_back(names_[entries_[e].name].text());
            entries_[e].referenced = 1;
        }
        e = next;
    }
    return out;
}

DnsCorrelatorStats DefaultCorrelator::stats() const
{
    DnsCorrelatorStats s;
    s.answers = answers_;
    s.evictions = evictions_;
    s.entries = entry_index_.size();
    s.bytes = sizeof(*this) + names_.capacity() * sizeof(Name) + groups_.capacity() * sizeof(Group) +
              entries_.capacity() * sizeof(Entry) + name_index_.bytes() + group_index_.bytes() +
              entry_index_.bytes() + name_heap_bytes_;
    return s;
}

} // namespace
} // namespace dns

std::unique_ptr<DnsCorrelator> make_default_correlator(const DnsCacheOptions &options)
{
    return std::make_unique<dns::DefaultCorrelator>(options);
}

} // namespace connscope
