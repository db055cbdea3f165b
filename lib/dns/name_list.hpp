// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// A lookup's names written into a vector the caller keeps from event to
// event (NetTcpConnect::results), so that a steady state allocates nothing:
// each string keeps its buffer, and strings the list no longer needs wait in
// a spare pile, buffers and all, until a longer list takes them back.
#pragma once

#include <connscope/address.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace connscope::detail {

class NameList {
public:
    // Starts writing into out (its current names are replaced).
    void start(std::vector<std::string> &out) noexcept
    {
        out_ = &out;
        used_ = 0;
    }

    void add(std::string_view name)
    {
        if (used_ == out_->size()) {
            if (spare_.empty()) {
                out_->emplace_back();
            } else {
                out_->push_back(std::move(spare_.back()));
                spare_.pop_back();
            }
        }
        (*out_)[used_++].assign(name.data(), name.size());
    }

    // Ends the list: out holds exactly the names added since start().
    void finish()
    {
        while (out_->size() > used_) {
            spare_.push_back(std::move(out_->back()));
            out_->pop_back();
        }
    }

private:
    std::vector<std::string> *out_ = nullptr;
    std::size_t used_ = 0;
    std::vector<std::string> spare_;
};

// A correlator that writes its names into a NameList (the default one); the
// Session uses it where it can, DnsCorrelator::lookup() (a new vector per
// call) for any other correlator.
class NameListLookup {
public:
    virtual void lookup_into(std::uint64_t netns, const IpAddress &address, std::uint64_t now_ns,
                             NameList &names) = 0;

protected:
    ~NameListLookup() = default;
};

} // namespace connscope::detail
