#include "chains.hpp"
#include "index_table.hpp"
#include "name_list.hpp"

#include <connscope/dns.hpp>
#include <connscope/error.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>
#include <unordered_map>

namespace connscope {
namespace dns {
namespace {

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
    std::size_t heap_bytes() const noexcept { return heap_bytes_for(size); }
    static constexpr std::size_t heap_bytes_for(std::size_t size) noexcept
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

// 40 bytes: IpAddress is 17 bytes with alignment 1.
struct Group {
    std::uint64_t netns = 0;
    IpAddress ip;
    std::uint32_t head = nil_id; // newest entry; next free slot when free
    std::uint32_t budget = nil_id;
};

// Who pays for an entry. Budget 0 is the host's; the others are made on first
// use and freed with their last entry, so namespaces that come and go leave
// nothing behind.
struct Budget {
    std::uint64_t key = 0;
    std::uint64_t entries = 0;
    std::uint64_t bytes = 0;
    std::uint32_t head = nil_id, tail = nil_id; // own LRU, most recent first; head = next free
};

// 40 bytes. Links are slab indices: half the size of pointers and stable
// across reallocation. Each entry is on its address's list, its budget's LRU,
// and (unless it is the host's) the LRU of the pool all other budgets share.
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
    std::uint32_t bprev = nil_id, bnext = nil_id; // budget LRU, most recent first
    std::uint32_t pprev = nil_id, pnext = nil_id; // pool LRU, most recent first; pnext = next free
};

// What max_bytes charges an entry: as if its group and name were its own, and
// with 8-byte index slots at the lowest load a table has (3/8, just after it
// doubled). An upper bound of what the entries hold, whatever they share.
constexpr std::size_t index_slot_charge = (8 * 8 + 2) / 3;
constexpr std::size_t entry_charge(std::size_t name_size)
{
    return sizeof(Entry) + sizeof(Group) + sizeof(Name) + Name::heap_bytes_for(name_size) +
           3 * index_slot_charge;
}
constexpr std::size_t min_max_bytes = 4096;

// An LRU list threaded through one pair of an entry's links.
struct ListLinks {
    std::uint32_t Entry::*prev;
    std::uint32_t Entry::*next;
};
constexpr ListLinks budget_links{&Entry::bprev, &Entry::bnext};
constexpr ListLinks pool_links{&Entry::pprev, &Entry::pnext};

enum class Why { budget, global, expired };

IpAddress normalized(const IpAddress &ip)
{
    IpAddress key = ip.unmapped();
    if (key.family == IpAddress::Family::v4)
        std::fill(key.bytes.begin() + 4, key.bytes.end(), std::uint8_t{0});
    return key;
}

class DefaultCorrelator final : public DnsCorrelator, public detail::NameListLookup {
public:
    explicit DefaultCorrelator(const DnsCacheOptions &options)
        : grace_s_(options.grace.count() < 0 ? 0 : static_cast<std::uint64_t>(options.grace.count())),
          max_entries_(std::min<std::size_t>(options.max_entries, nil_id - 1)),
          max_bytes_(options.max_bytes),
          host_netns_(options.host_netns),
          budget_of_(options.budget_of),
          seed_(mix64(static_cast<std::uint64_t>(
                          std::chrono::steady_clock::now().time_since_epoch().count()) ^
                      reinterpret_cast<std::uintptr_t>(this)))
    {
        if (options.max_entries == 0)
            throw Error(EINVAL, "default DNS correlator: max_entries is 0; it must be at least 1");
        if (options.max_bytes < min_max_bytes)
            throw Error(EINVAL, "default DNS correlator: max_bytes is " + std::to_string(options.max_bytes) +
                                    "; it must be at least 4096");
        if (options.host_reserve_percent > 100)
            throw Error(EINVAL, "default DNS correlator: host_reserve_percent is above 100");
        if (options.budget_share_percent == 0 || options.budget_share_percent > 100)
            throw Error(EINVAL, "default DNS correlator: budget_share_percent must be 1..100");
        const unsigned reserve = host_netns_ ? options.host_reserve_percent : 0;
        pool_entries_ = max_entries_ - percent(max_entries_, reserve);
        pool_bytes_ = max_bytes_ - percent(max_bytes_, reserve);
        share_entries_ = percent(max_entries_, options.budget_share_percent);
        share_bytes_ = percent(max_bytes_, options.budget_share_percent);
        slab_max_ = std::max<std::size_t>(1, std::min(max_entries_, max_bytes_ / entry_charge(0)));
        budgets_.emplace_back(); // the host's
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
    void lookup_into(std::uint64_t netns, const IpAddress &address, std::uint64_t now_ns,
                     detail::NameList &names) override;
    DnsCorrelatorStats stats() const override;

private:
    bool refresh_if_current(std::uint32_t group, const Binding &b, std::uint64_t expiry_ns);

    void upsert(std::uint64_t netns, const IpAddress &key, std::uint32_t group_hash,
                std::string_view name, std::uint64_t expiry_ns);
    std::uint32_t find_group(std::uint32_t hash, std::uint64_t netns, const IpAddress &key) const;
    std::uint32_t find_name(std::uint32_t hash, std::string_view name) const;
    std::uint32_t find_entry(std::uint32_t group, std::uint32_t name) const;
    std::uint32_t group_hash(std::uint64_t netns, const IpAddress &key) const;
    std::uint32_t name_hash(std::string_view name) const;
    static std::uint32_t entry_hash(std::uint32_t group, std::uint32_t name);

    static std::size_t percent(std::size_t of, unsigned pct)
    {
        return of / 100 * pct + of % 100 * pct / 100; // of * pct / 100 without overflow
    }
    std::uint32_t find_budget(std::uint64_t netns);
    std::uint32_t make_budget(std::uint64_t key);
    bool over_share(std::uint32_t b, std::size_t charge) const
    {
        return budgets_[b].entries + 1 > share_entries_ || budgets_[b].bytes + charge > share_bytes_;
    }
    bool make_room(std::uint32_t b, std::size_t charge);
    void remove_entry(std::uint32_t e, Why why);
    bool evict_own(std::uint32_t b, Why why);
    void release_if_empty(std::uint32_t b);
    bool evict_pool();
    void reap(std::uint64_t now_ns, int budget);
    void unlink(std::uint32_t e, ListLinks l, std::uint32_t &head, std::uint32_t &tail);
    void push_front(std::uint32_t e, ListLinks l, std::uint32_t &head, std::uint32_t &tail);
    void group_unlink(std::uint32_t e);
    void group_push_front(std::uint32_t e);


    const std::uint64_t grace_s_;
    const std::size_t max_entries_;
    const std::size_t max_bytes_;
    const std::uint64_t host_netns_;
    const std::function<std::uint64_t(std::uint64_t)> budget_of_;
    const std::uint64_t seed_;
    std::size_t pool_entries_ = 0, pool_bytes_ = 0;   // what all but the host may hold
    std::size_t share_entries_ = 0, share_bytes_ = 0; // one budget's share when the pool is full
    // The most entries (so groups and names) the bounds let live at once: the
    // slabs never grow past it, so their doubling cannot overshoot max_bytes.
    std::size_t slab_max_ = 0;
    template <class T>
    void make_slot(std::vector<T> &slab) const
    {
        if (slab.size() == slab.capacity())
            slab.reserve(std::max(slab.size() + 1, std::min(std::max<std::size_t>(64, slab.capacity() * 2), slab_max_)));
        slab.emplace_back();
    }

    std::vector<Name> names_;
    std::vector<Group> groups_;
    std::vector<Entry> entries_;
    std::uint32_t free_name_ = nil_id, free_group_ = nil_id, free_entry_ = nil_id;
    IndexTable name_index_, group_index_, entry_index_;
    std::vector<Budget> budgets_;
    std::unordered_map<std::uint64_t, std::uint32_t> budget_index_;
    std::uint32_t free_budget_ = nil_id;
    std::uint32_t pinned_budget_ = nil_id; // the one being inserted into: not freed while empty
    std::uint32_t pool_head_ = nil_id, pool_tail_ = nil_id;
    std::size_t pool_count_ = 0, pool_charged_ = 0;
    std::size_t total_charged_ = 0;
    std::size_t name_heap_bytes_ = 0;

    std::uint64_t answers_ = 0;
    std::uint64_t evicted_budget_ = 0, evicted_global_ = 0, expired_ = 0;

    ChainBuilder chains_; // reused by every observe() so the common path does not allocate
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

void DefaultCorrelator::unlink(std::uint32_t e, ListLinks l, std::uint32_t &head, std::uint32_t &tail)
{
    Entry &x = entries_[e];
    (x.*l.prev == nil_id ? head : entries_[x.*l.prev].*l.next) = x.*l.next;
    (x.*l.next == nil_id ? tail : entries_[x.*l.next].*l.prev) = x.*l.prev;
    x.*l.prev = x.*l.next = nil_id;
}

void DefaultCorrelator::push_front(std::uint32_t e, ListLinks l, std::uint32_t &head, std::uint32_t &tail)
{
    Entry &x = entries_[e];
    x.*l.prev = nil_id;
    x.*l.next = head;
    (head == nil_id ? tail : entries_[head].*l.prev) = e;
    head = e;
}

std::uint32_t DefaultCorrelator::find_budget(std::uint64_t netns)
{
    if (host_netns_ != 0 && netns == host_netns_)
        return 0;
    // Asked every time: an inode can be reused by a namespace of another owner.
    const std::uint64_t key = budget_of_ ? budget_of_(netns) : netns;
    const auto it = budget_index_.find(key);
    return it == budget_index_.end() ? make_budget(key) : it->second;
}

std::uint32_t DefaultCorrelator::make_budget(std::uint64_t key)
{
    std::uint32_t b;
    if (free_budget_ != nil_id) {
        b = free_budget_;
        free_budget_ = budgets_[b].head;
    } else {
        b = static_cast<std::uint32_t>(budgets_.size());
        budgets_.emplace_back();
    }
    budgets_[b] = Budget{};
    budgets_[b].key = key;
    budget_index_.emplace(key, b);
    return b;
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

void DefaultCorrelator::remove_entry(std::uint32_t e, Why why)
{
    group_unlink(e);
    Entry &x = entries_[e];
    entry_index_.erase(entry_hash(x.group, x.name), e);

    const std::uint32_t g = x.group;
    const std::uint32_t bi = groups_[g].budget;
    Budget &b = budgets_[bi];
    const std::size_t charge = entry_charge(names_[x.name].size);
    unlink(e, budget_links, b.head, b.tail);
    --b.entries;
    b.bytes -= charge;
    total_charged_ -= charge;
    if (bi != 0) {
        unlink(e, pool_links, pool_head_, pool_tail_);
        --pool_count_;
        pool_charged_ -= charge;
        if (bi != pinned_budget_)
            release_if_empty(bi);
    }
    switch (why) {
    case Why::budget: ++evicted_budget_; break;
    case Why::global: ++evicted_global_; break;
    case Why::expired: ++expired_; break;
    }

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
    x.pnext = free_entry_;
    free_entry_ = e;
}

void DefaultCorrelator::release_if_empty(std::uint32_t bi)
{
    Budget &b = budgets_[bi];
    if (bi == 0 || b.entries != 0)
        return;
    budget_index_.erase(b.key);
    b.head = free_budget_;
    free_budget_ = bi;
}

// CLOCK over one budget's list: referenced entries at the tail get a second
// chance (bounded), then the tail goes.
bool DefaultCorrelator::evict_own(std::uint32_t bi, Why why)
{
    Budget &b = budgets_[bi];
    for (int chances = 0; b.tail != nil_id; ++chances) {
        const std::uint32_t e = b.tail;
        if (entries_[e].referenced && chances < max_second_chances) {
            entries_[e].referenced = 0;
            unlink(e, budget_links, b.head, b.tail);
            push_front(e, budget_links, b.head, b.tail);
            continue;
        }
        remove_entry(e, why);
        return true;
    }
    return false;
}

// CLOCK over the pool, sparing entries of budgets within their share while
// the chances last: room comes first from whoever holds too much.
bool DefaultCorrelator::evict_pool()
{
    for (int chances = 0; pool_tail_ != nil_id; ++chances) {
        const std::uint32_t e = pool_tail_;
        Entry &x = entries_[e];
        const bool spare = x.referenced || !over_share(groups_[x.group].budget, 0);
        if (spare && chances < max_second_chances) {
            x.referenced = 0;
            unlink(e, pool_links, pool_head_, pool_tail_);
            push_front(e, pool_links, pool_head_, pool_tail_);
            continue;
        }
        remove_entry(e, Why::global);
        return true;
    }
    return false;
}

// Frees room for one entry of `charge` bytes in budget `b` (see
// DnsCacheOptions); false when there is none to be had.
bool DefaultCorrelator::make_room(std::uint32_t b, std::size_t charge)
{
    if (b != 0) {
        while (pool_count_ + 1 > pool_entries_ || pool_charged_ + charge > pool_bytes_) {
            if (!((over_share(b, charge) && evict_own(b, Why::budget)) || evict_pool()))
                return false;
        }
    }
    // For another budget this takes only what the host holds above its
    // reserve: the pool is within its bound here.
    while (entry_index_.size() + 1 > max_entries_ || total_charged_ + charge > max_bytes_) {
        const bool done = b == 0 ? evict_pool() || evict_own(0, Why::budget)
                                 : evict_own(0, Why::global) || evict_own(b, Why::budget);
        if (!done)
            return false;
    }
    return true;
}

void DefaultCorrelator::reap(std::uint64_t now_ns, int budget)
{
    for (int i = budget; i-- > 0 && pool_tail_ != nil_id && entries_[pool_tail_].expiry_ns <= now_ns;)
        remove_entry(pool_tail_, Why::expired);
    Budget &host = budgets_[0];
    for (int i = budget; i-- > 0 && host.tail != nil_id && entries_[host.tail].expiry_ns <= now_ns;)
        remove_entry(host.tail, Why::expired);
}

void DefaultCorrelator::upsert(std::uint64_t netns, const IpAddress &key, std::uint32_t ghash,
                               std::string_view name, std::uint64_t expiry_ns)
{
    // An existing address keeps the budget it was made in.
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
    const std::uint32_t b = g != nil_id ? groups_[g].budget : find_budget(netns);
    const std::size_t charge = entry_charge(name.size());
    if (entry_index_.size() + 1 > max_entries_ || total_charged_ + charge > max_bytes_ ||
        (b != 0 && (pool_count_ + 1 > pool_entries_ || pool_charged_ + charge > pool_bytes_))) {
        pinned_budget_ = b;
        const bool room = make_room(b, charge);
        pinned_budget_ = nil_id;
        if (!room) {
            ++evicted_global_; // not admitted: counted as evicted at once
            release_if_empty(b);
            return;
        }
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
            make_slot(groups_);
        }
        groups_[g].netns = netns;
        groups_[g].ip = key;
        groups_[g].head = nil_id;
        groups_[g].budget = b;
        group_index_.insert(ghash, g);
    }
    if (n == nil_id) {
        if (free_name_ != nil_id) {
            n = free_name_;
            free_name_ = names_[n].refs;
        } else {
            n = static_cast<std::uint32_t>(names_.size());
            make_slot(names_);
        }
        name_heap_bytes_ += names_[n].assign(name);
        names_[n].hash = nhash;
        names_[n].refs = 0;
        name_index_.insert(nhash, n);
    }
    std::uint32_t e;
    if (free_entry_ != nil_id) {
        e = free_entry_;
        free_entry_ = entries_[e].pnext;
    } else {
        e = static_cast<std::uint32_t>(entries_.size());
        make_slot(entries_);
    }
    Entry &x = entries_[e];
    x.expiry_ns = expiry_ns;
    x.referenced = 0;
    x.name = n;
    x.group = g;
    ++names_[n].refs;
    entry_index_.insert(entry_hash(g, n), e);
    group_push_front(e);
    Budget &bu = budgets_[b];
    push_front(e, budget_links, bu.head, bu.tail);
    ++bu.entries;
    bu.bytes += charge;
    total_charged_ += charge;
    if (b != 0) {
        push_front(e, pool_links, pool_head_, pool_tail_);
        ++pool_count_;
        pool_charged_ += charge;
    }
}

// The common case: an address answered again with the chain it already
// leads with. Then only expiry and recency change, and nothing is relinked.
bool DefaultCorrelator::refresh_if_current(std::uint32_t group, const Binding &b, std::uint64_t expiry_ns)
{
    std::uint32_t e = groups_[group].head;
    for (std::uint32_t i = 0; i < b.count; ++i, e = entries_[e].gnext)
        if (e == nil_id || names_[entries_[e].name].text() != chains_.name(b.first + i))
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
    chains_.build(answer);
    // Inserting moves names to the front of their address's list, so walking
    // backwards leaves the first chain's question name first.
    for (auto b = chains_.bindings().rbegin(); b != chains_.bindings().rend(); ++b) {
        const IpAddress key = normalized(b->ip);
        const std::uint32_t ghash = group_hash(netns, key);
        const std::uint64_t life_s = std::max<std::uint64_t>(b->ttl, grace_s_);
        const std::uint64_t life_ns = life_s > max_expiry / ns_per_s ? max_expiry : life_s * ns_per_s;
        const std::uint64_t expiry = time_ns > max_expiry - life_ns ? max_expiry : time_ns + life_ns;
        const std::uint32_t g = find_group(ghash, netns, key);
        if (g != nil_id && refresh_if_current(g, *b, expiry))
            continue;
        for (std::uint32_t i = b->count; i-- > 0;)
            upsert(netns, key, ghash, chains_.name(b->first + i), expiry);
    }
}

std::vector<std::string> DefaultCorrelator::lookup(std::uint64_t netns, const IpAddress &address,
                                                   std::uint64_t now_ns)
{
    std::vector<std::string> out;
    detail::NameList names;
    names.start(out);
    lookup_into(netns, address, now_ns, names);
    names.finish();
    return out;
}

void DefaultCorrelator::lookup_into(std::uint64_t netns, const IpAddress &address, std::uint64_t now_ns,
                                    detail::NameList &names)
{
    const IpAddress key = normalized(address);
    const std::uint32_t g = find_group(group_hash(netns, key), netns, key);
    if (g == nil_id)
        return;
    for (std::uint32_t e = groups_[g].head; e != nil_id;) {
        const std::uint32_t next = entries_[e].gnext;
        if (entries_[e].expiry_ns <= now_ns) {
            remove_entry(e, Why::expired); // frees the group with its last entry; next is then nil
        } else {
            names.add(names_[entries_[e].name].text());
            entries_[e].referenced = 1;
        }
        e = next;
    }
}

DnsCorrelatorStats DefaultCorrelator::stats() const
{
    DnsCorrelatorStats s;
    s.answers = answers_;
    s.evicted_budget = evicted_budget_;
    s.evicted_global = evicted_global_;
    s.evictions = evicted_budget_ + evicted_global_;
    s.expired = expired_;
    s.entries = entry_index_.size();
    s.bytes = total_charged_;
    s.host_entries = budgets_[0].entries;
    s.host_bytes = budgets_[0].bytes;
    s.budget_groups = budget_index_.size() + (budgets_[0].entries ? 1 : 0);
    // The budget map's nodes: a key, a value, a next pointer and a cached hash, as a malloc chunk.
    s.bytes_allocated = sizeof(*this) + names_.capacity() * sizeof(Name) + groups_.capacity() * sizeof(Group) +
                        entries_.capacity() * sizeof(Entry) + budgets_.capacity() * sizeof(Budget) +
                        budget_index_.bucket_count() * sizeof(void *) + budget_index_.size() * 48 +
                        name_index_.bytes() + group_index_.bytes() + entry_index_.bytes() + name_heap_bytes_;
    return s;
}

} // namespace
} // namespace dns

std::unique_ptr<DnsCorrelator> make_default_correlator(const DnsCacheOptions &options)
{
    return std::make_unique<dns::DefaultCorrelator>(options);
}

} // namespace connscope
