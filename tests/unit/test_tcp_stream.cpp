#include "dns_builder.hpp"

#include "dns/tcp_stream.hpp"

#include <catch2/catch.hpp>

#include <stdexcept>

using connscope::dns::TcpFlowKey;
using connscope::dns::TcpReassembler;
using dnstest::Bytes;

namespace {

TcpFlowKey flow(std::uint16_t dport = 40000, std::uint64_t netns = 1)
{
    return TcpFlowKey{netns, dnstest::ip("127.0.0.153"), dnstest::ip("127.0.0.1"), 53, dport};
}

struct Sink {
    std::vector<Bytes> messages;
    TcpReassembler::MessageFn fn()
    {
        return [this](const std::uint8_t *p, std::size_t n) { messages.emplace_back(p, p + n); };
    }
};

Bytes message(std::uint8_t tag, std::size_t size)
{
    Bytes m(size, tag);
    return m;
}

Bytes concat(std::initializer_list<Bytes> parts)
{
    Bytes out;
    for (const auto &p : parts)
        out.insert(out.end(), p.begin(), p.end());
    return out;
}

void feed(TcpReassembler &r, const TcpFlowKey &k, std::uint32_t seq, const Bytes &b, std::size_t from,
          std::size_t to, Sink &sink, bool fin = false)
{
    r.feed(k, seq + static_cast<std::uint32_t>(from), b.data() + from, to - from, fin, sink.fn());
}

} // namespace

TEST_CASE("a message in one segment", "[dns][tcp]")
{
    TcpReassembler r;
    Sink sink;
    const Bytes stream = dnstest::tcp_frame(dnstest::captured_a_response);
    feed(r, flow(), 1000, stream, 0, stream.size(), sink);
    REQUIRE(sink.messages.size() == 1);
    CHECK(sink.messages[0] == dnstest::captured_a_response);
    CHECK(r.flows() == 1);
    CHECK(r.dropped_bytes() == 0);
}

TEST_CASE("a message split at every possible point", "[dns][tcp]")
{
    const Bytes stream = dnstest::tcp_frame(dnstest::captured_aaaa_response);
    for (std::size_t cut = 1; cut < stream.size(); ++cut) {
        for (std::size_t cut2 = cut; cut2 < stream.size(); cut2 += 7) {
            INFO(cut << " " << cut2);
            TcpReassembler r;
            Sink sink;
            feed(r, flow(), 0xfffffff0u, stream, 0, cut, sink); // wraps the sequence space
            CHECK(sink.messages.empty());
            feed(r, flow(), 0xfffffff0u, stream, cut, cut2, sink);
            feed(r, flow(), 0xfffffff0u, stream, cut2, stream.size(), sink, true);
            REQUIRE(sink.messages.size() == 1);
            CHECK(sink.messages[0] == dnstest::captured_aaaa_response);
            CHECK(r.dropped_bytes() == 0);
            CHECK(r.flows() == 0);
        }
    }
}

TEST_CASE("several messages in one segment, and one spanning two", "[dns][tcp]")
{
    TcpReassembler r;
    Sink sink;
    const Bytes m1 = message(1, 30), m2 = message(2, 0), m3 = message(3, 300), m4 = message(4, 5);
    const Bytes stream = concat({dnstest::tcp_frame(m1), dnstest::tcp_frame(m2), dnstest::tcp_frame(m3),
                                 dnstest::tcp_frame(m4)});
    const std::size_t cut = 32 + 2 + 100;
    feed(r, flow(), 7, stream, 0, cut, sink);
    REQUIRE(sink.messages.size() == 2);
    CHECK(sink.messages[0] == m1);
    CHECK(sink.messages[1] == m2);
    feed(r, flow(), 7, stream, cut, stream.size(), sink);
    REQUIRE(sink.messages.size() == 4);
    CHECK(sink.messages[2] == m3);
    CHECK(sink.messages[3] == m4);
    CHECK(r.dropped_bytes() == 0);
}

TEST_CASE("retransmissions are not delivered twice", "[dns][tcp]")
{
    TcpReassembler r;
    Sink sink;
    const Bytes stream = concat({dnstest::tcp_frame(message(1, 40)), dnstest::tcp_frame(message(2, 40))});
    feed(r, flow(), 500, stream, 0, 30, sink);
    feed(r, flow(), 500, stream, 0, 30, sink); // exact retransmission of a partial message
    feed(r, flow(), 500, stream, 30, 50, sink);
    REQUIRE(sink.messages.size() == 1);
    CHECK(sink.messages[0] == message(1, 40));
    feed(r, flow(), 500, stream, 30, 50, sink); // exact retransmission of a delivered message
    CHECK(sink.messages.size() == 1);
    feed(r, flow(), 500, stream, 20, stream.size(), sink); // repacketised: old and new bytes
    REQUIRE(sink.messages.size() == 2);
    CHECK(sink.messages[1] == message(2, 40));
    CHECK(r.dropped_bytes() == 0);
}

TEST_CASE("a gap drops the flow's partial message and what follows", "[dns][tcp]")
{
    TcpReassembler r;
    Sink sink;
    const Bytes stream = concat({dnstest::tcp_frame(message(1, 40)), dnstest::tcp_frame(message(2, 40)),
                                 dnstest::tcp_frame(message(3, 40))});
    feed(r, flow(), 0, stream, 0, 50, sink);  // message 1 and 8 bytes of message 2
    REQUIRE(sink.messages.size() == 1);
    feed(r, flow(), 0, stream, 60, 84, sink); // 10 bytes missing
    CHECK(r.dropped_bytes() == 8 + 24);
    feed(r, flow(), 0, stream, 84, stream.size(), sink);
    CHECK(r.dropped_bytes() == 8 + 24 + 42);
    CHECK(sink.messages.size() == 1);
    // The late segment is old news now and the flow ends with FIN.
    feed(r, flow(), 0, stream, 50, 60, sink, true);
    CHECK(sink.messages.size() == 1);
    CHECK(r.flows() == 0);

    // A new connection on the same ports starts afresh.
    feed(r, flow(), 9000, stream, 0, 42, sink);
    CHECK(sink.messages.size() == 2);
}

TEST_CASE("FIN ends a flow; an unfinished message is counted", "[dns][tcp]")
{
    TcpReassembler r;
    Sink sink;
    const Bytes stream = dnstest::tcp_frame(message(9, 100));
    feed(r, flow(), 1, stream, 0, 60, sink);
    CHECK(r.flows() == 1);
    r.feed(flow(), 61, nullptr, 0, true, sink.fn());
    CHECK(r.flows() == 0);
    CHECK(r.dropped_bytes() == 60);
    CHECK(sink.messages.empty());
    // A bare FIN or ACK for an unknown flow creates nothing.
    r.feed(flow(1), 5, nullptr, 0, true, sink.fn());
    r.feed(flow(2), 5, nullptr, 0, false, sink.fn());
    CHECK(r.flows() == 0);
}

TEST_CASE("flows are kept apart", "[dns][tcp]")
{
    TcpReassembler r;
    Sink sink;
    const Bytes a = dnstest::tcp_frame(message('a', 20)), b = dnstest::tcp_frame(message('b', 20));
    feed(r, flow(1), 100, a, 0, 10, sink);
    feed(r, flow(2), 100, b, 0, 10, sink);
    feed(r, flow(1, 2), 100, b, 0, 10, sink); // same ports, other namespace
    feed(r, flow(2), 100, b, 10, b.size(), sink);
    feed(r, flow(1), 100, a, 10, a.size(), sink);
    feed(r, flow(1, 2), 100, b, 10, b.size(), sink);
    REQUIRE(sink.messages.size() == 3);
    CHECK(sink.messages[0] == message('b', 20));
    CHECK(sink.messages[1] == message('a', 20));
    CHECK(sink.messages[2] == message('b', 20));
    CHECK(r.flows() == 3);
}

TEST_CASE("the least recently used flow is evicted and its bytes counted", "[dns][tcp]")
{
    TcpReassembler r(2);
    Sink sink;
    const Bytes m = dnstest::tcp_frame(message(5, 50));
    feed(r, flow(1), 0, m, 0, 11, sink);
    feed(r, flow(2), 0, m, 0, 13, sink);
    feed(r, flow(1), 0, m, 11, 20, sink); // flow 2 is now the least recently used
    feed(r, flow(3), 0, m, 0, 17, sink);
    CHECK(r.flows() == 2);
    CHECK(r.dropped_bytes() == 13);
    feed(r, flow(1), 0, m, 20, m.size(), sink);
    feed(r, flow(3), 0, m, 17, m.size(), sink);
    CHECK(sink.messages.size() == 2);
    // Flow 2 comes back as new (evicting flow 1, which holds nothing): its
    // tail is taken as a message boundary, so it only waits.
    feed(r, flow(2), 0, m, 13, m.size(), sink);
    CHECK(sink.messages.size() == 2);
    CHECK(r.flows() == 2);
    CHECK(r.dropped_bytes() == 13);
}

TEST_CASE("messages larger than max_flow_bytes are dropped", "[dns][tcp]")
{
    TcpReassembler r(16, 64);
    Sink sink;
    const Bytes stream = concat({dnstest::tcp_frame(message(1, 10)), dnstest::tcp_frame(message(2, 100))});
    feed(r, flow(), 0, stream, 0, 40, sink);
    feed(r, flow(), 0, stream, 40, 80, sink);
    CHECK(sink.messages.size() == 1);
    CHECK(r.dropped_bytes() == 80 - 12);
}

TEST_CASE("a throwing callback forgets the flow", "[dns][tcp]")
{
    TcpReassembler r;
    const Bytes stream = dnstest::tcp_frame(message(1, 10));
    auto thrower = [](const std::uint8_t *, std::size_t) { throw std::runtime_error("boom"); };
    CHECK_THROWS_AS(r.feed(flow(), 0, stream.data(), stream.size(), false, thrower), std::runtime_error);
    CHECK(r.flows() == 0);
}

TEST_CASE("flow keys hash and compare by every field", "[dns][tcp]")
{
    connscope::dns::TcpFlowKeyHash h;
    const TcpFlowKey k = flow();
    TcpFlowKey other = k;
    CHECK(other == k);
    CHECK(h(other) == h(k));
    other.sport = 54;
    CHECK(other != k);
    other = k;
    other.dst = dnstest::ip("::1");
    CHECK(other != k);
    other = k;
    other.netns = 2;
    CHECK(other != k);
    CHECK(h(other) != h(k));
}
