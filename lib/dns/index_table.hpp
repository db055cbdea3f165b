// Private to lib/dns: a compact open-addressing hash index of 32-bit ids.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace connscope::dns {

inline constexpr std::uint32_t nil_id = 0xffffffffu;

inline std::uint64_t mix64(std::uint64_t x) noexcept
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

inline std::uint64_t hash_bytes(const void *data, std::size_t len, std::uint64_t seed) noexcept
{
    const auto *p = static_cast<const unsigned char *>(data);
    std::uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL);
    while (len >= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        h = (h ^ mix64(w)) * 0x9e3779b97f4a7c15ULL;
        p += 8;
        len -= 8;
    }
    std::uint64_t tail = 0;
    std::memcpy(&tail, p, len);
    return mix64(h ^ tail ^ (static_cast<std::uint64_t>(len) << 56));
}

// The table holds only ids and their hashes; the objects live in the caller's
// slab, so an index costs 8 bytes a slot instead of a node per element. Linear
// probing with backward-shift deletion: no tombstones, lookups stay short.
class IndexTable {
public:
    IndexTable() : slots_(16, Slot{nil_id, 0}), mask_(15) {}

    template <class Match>
    std::uint32_t find(std::uint32_t hash, Match &&match) const
    {
        for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
            const Slot &s = slots_[i];
            if (s.id == nil_id)
                return nil_id;
            if (s.hash == hash && match(s.id))
                return s.id;
        }
    }

    // The id must not be present already.
    void insert(std::uint32_t hash, std::uint32_t id)
    {
        if ((count_ + 1) * 4 > slots_.size() * 3)
            grow();
        place(Slot{id, hash});
        ++count_;
    }

    void erase(std::uint32_t hash, std::uint32_t id)
    {
        std::size_t i = hash & mask_;
        while (slots_[i].id != id) {
            if (slots_[i].id == nil_id)
                return;
            i = (i + 1) & mask_;
        }
        // Pull later members of the probe run back over the hole so every
        // element stays reachable from its home slot.
        for (std::size_t j = (i + 1) & mask_; slots_[j].id != nil_id; j = (j + 1) & mask_) {
            std::size_t home = slots_[j].hash & mask_;
            bool movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
            if (movable) {
                slots_[i] = slots_[j];
                i = j;
            }
        }
        slots_[i] = Slot{nil_id, 0};
        --count_;
    }

    std::size_t size() const noexcept { return count_; }
    std::size_t bytes() const noexcept { return slots_.capacity() * sizeof(Slot); }

private:
    struct Slot {
        std::uint32_t id;
        std::uint32_t hash;
    };

    void place(Slot s)
    {
        std::size_t i = s.hash & mask_;
        while (slots_[i].id != nil_id)
            i = (i + 1) & mask_;
        slots_[i] = s;
    }

    void grow()
    {
        std::vector<Slot> old(slots_.size() * 2, Slot{nil_id, 0});
        old.swap(slots_);
        mask_ = slots_.size() - 1;
        for (const Slot &s : old)
            if (s.id != nil_id)
                place(s);
    }

    std::vector<Slot> slots_;
    std::size_t mask_;
    std::size_t count_ = 0;
};

} // namespace connscope::dns
