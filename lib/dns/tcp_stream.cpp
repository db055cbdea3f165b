#include "tcp_stream.hpp"

#include "index_table.hpp"

#include <algorithm>
#include <cstring>

namespace connscope::dns {

std::size_t TcpFlowKeyHash::operator()(const TcpFlowKey &k) const noexcept
{
    std::uint8_t buf[8 + 2 * 17 + 4];
    std::size_t n = 0;
    std::memcpy(buf + n, &k.netns, 8);
    n += 8;
    for (const IpAddress *ip : {&k.src, &k.dst}) {
        buf[n++] = static_cast<std::uint8_t>(ip->family);
        std::memcpy(buf + n, ip->bytes.data(), 16);
        n += 16;
    }
    std::memcpy(buf + n, &k.sport, 2);
    std::memcpy(buf + n + 2, &k.dport, 2);
    n += 4;
    return static_cast<std::size_t>(hash_bytes(buf, n, 0x636f6e6e73636f70ULL));
}

TcpReassembler::TcpReassembler(std::size_t max_flows, std::size_t max_flow_bytes)
    : max_flows_(std::max<std::size_t>(max_flows, 1)),
      max_flow_bytes_(std::max<std::size_t>(max_flow_bytes, 2))
{
}

void TcpReassembler::erase(FlowList::iterator it, bool count_pending)
{
    if (count_pending)
        dropped_bytes_ += it->pending.size();
    flows_.erase(it->key);
    lru_.erase(it);
}

// Delivers every complete message in pending + data and keeps the remainder.
// Messages that arrive whole in one segment are handed over in place.
void TcpReassembler::deliver(Flow &flow, const std::uint8_t *data, std::size_t len,
                             const MessageFn &on_message)
{
    while (len > 0) {
        if (flow.pending.empty()) {
            if (len >= 2) {
                const std::size_t size = static_cast<std::size_t>(data[0] << 8 | data[1]);
                if (len >= 2 + size) {
                    on_message(data + 2, size);
                    data += 2 + size;
                    len -= 2 + size;
                    continue;
                }
            }
            if (len > max_flow_bytes_) {
                dropped_bytes_ += len;
                flow.desynced = true;
                return;
            }
            flow.pending.assign(data, data + len);
            return;
        }

        // Complete the length prefix first, then the message it announces.
        std::size_t want = 2;
        if (flow.pending.size() >= 2)
            want = 2 + static_cast<std::size_t>(flow.pending[0] << 8 | flow.pending[1]);
        const std::size_t take = std::min(len, want - flow.pending.size());
        if (flow.pending.size() + take > max_flow_bytes_) {
            dropped_bytes_ += flow.pending.size() + len;
            flow.pending.clear();
            flow.desynced = true;
            return;
        }
        flow.pending.insert(flow.pending.end(), data, data + take);
        data += take;
        len -= take;
        if (flow.pending.size() < 2)
            continue;
        want = 2 + static_cast<std::size_t>(flow.pending[0] << 8 | flow.pending[1]);
        if (flow.pending.size() == want) {
            on_message(flow.pending.data() + 2, want - 2);
            flow.pending.clear();
        }
    }
}

void TcpReassembler::feed(const TcpFlowKey &key, std::uint32_t seq, const std::uint8_t *data,
                          std::size_t len, bool fin, const MessageFn &on_message)
{
    if (data == nullptr)
        len = 0;
    auto found = flows_.find(key);
    FlowList::iterator it;
    if (found == flows_.end()) {
        if (len == 0)
            return; // a bare ACK or FIN of a flow never seen carries nothing
        if (flows_.size() >= max_flows_)
            erase(std::prev(lru_.end()), true);
        lru_.push_front(Flow{key, seq, false, {}});
        it = lru_.begin();
        flows_.emplace(key, it);
    } else {
        it = found->second;
        lru_.splice(lru_.begin(), lru_, it);
    }
    Flow &flow = *it;

    // Serial-number arithmetic (RFC 1982): sequence numbers wrap.
    const auto offset = static_cast<std::int32_t>(seq - flow.next_seq);
    if (offset < 0) {
        const std::size_t old = static_cast<std::size_t>(-static_cast<std::int64_t>(offset));
        // Bytes already taken are trimmed: a retransmission, possibly
        // repacketised so that it also carries new bytes.
        const std::size_t skip = std::min(old, len);
        data += skip;
        len -= skip;
        seq += static_cast<std::uint32_t>(skip);
    } else if (offset > 0 && !flow.desynced) {
        dropped_bytes_ += flow.pending.size();
        flow.pending.clear();
        flow.desynced = true;
    }

    if (len > 0) {
        flow.next_seq = seq + static_cast<std::uint32_t>(len);
        if (flow.desynced) {
            dropped_bytes_ += len;
        } else {
            try {
                deliver(flow, data, len, on_message);
            } catch (...) {
                erase(it, false);
                throw;
            }
        }
    }
    if (fin)
        erase(it, true);
}

} // namespace connscope::dns
