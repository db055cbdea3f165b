// Private to lib/: reassembly of DNS messages carried over TCP (RFC 7766),
// fed one captured segment at a time by the Session.
#pragma once

#include <connscope/address.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <unordered_map>
#include <vector>

namespace connscope::dns {

// One direction of a TCP connection in one network namespace.
struct TcpFlowKey {
    std::uint64_t netns = 0;
    IpAddress src;
    IpAddress dst;
    std::uint16_t sport = 0;
    std::uint16_t dport = 0;

    friend bool operator==(const TcpFlowKey &a, const TcpFlowKey &b) noexcept
    {
        return a.netns == b.netns && a.sport == b.sport && a.dport == b.dport && a.src == b.src &&
               a.dst == b.dst;
    }
    friend bool operator!=(const TcpFlowKey &a, const TcpFlowKey &b) noexcept { return !(a == b); }
};

struct TcpFlowKeyHash {
    std::size_t operator()(const TcpFlowKey &k) const noexcept;
};

// Cuts each flow's byte stream into length-prefixed DNS messages.
//
// Segments are expected in sequence order. An exact or partial retransmission
// of bytes already taken is trimmed; a gap (lost or reordered segment) makes
// the flow's position in the stream unknown, so its pending bytes and every
// later byte of that flow are dropped and counted until it ends. Not
// thread-safe.
class TcpReassembler {
public:
    using MessageFn = std::function<void(const std::uint8_t *, std::size_t)>;

    explicit TcpReassembler(std::size_t max_flows = 1024,
                            std::size_t max_flow_bytes = 2 + 65535 + 65535);

    // on_message gets each complete message without its 2-byte length prefix;
    // the pointer is valid only during the call. fin (pass it for RST too)
    // ends the flow after this segment's data; an unfinished message is then
    // counted as dropped. If on_message throws, the flow is forgotten and the
    // exception propagates.
    void feed(const TcpFlowKey &key, std::uint32_t seq, const std::uint8_t *data, std::size_t len,
              bool fin, const MessageFn &on_message);

    // Bytes captured but never delivered: gaps, evicted flows, flows that
    // ended mid-message, messages larger than max_flow_bytes.
    std::uint64_t dropped_bytes() const noexcept { return dropped_bytes_; }
    std::size_t flows() const noexcept { return flows_.size(); }

private:
    struct Flow {
        TcpFlowKey key;
        std::uint32_t next_seq = 0;
        bool desynced = false;
        std::vector<std::uint8_t> pending; // a message's first bytes, prefix included
    };
    using FlowList = std::list<Flow>; // most recently fed first

    void erase(FlowList::iterator it, bool count_pending);
    void deliver(Flow &flow, const std::uint8_t *data, std::size_t len, const MessageFn &on_message);

    std::size_t max_flows_;
    std::size_t max_flow_bytes_;
    FlowList lru_;
    std::unordered_map<TcpFlowKey, FlowList::iterator, TcpFlowKeyHash> flows_;
    std::uint64_t dropped_bytes_ = 0;
};

} // namespace connscope::dns
