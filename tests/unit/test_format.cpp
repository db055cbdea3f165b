// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The JSON contract and the text forms.
#include <catch2/catch.hpp>

#include <cerrno>

#include <connscope/format.hpp>

using namespace connscope;

TEST_CASE("json_escape gives valid JSON and UTF-8 for any bytes")
{
    CHECK(json_escape("plain") == "plain");
    CHECK(json_escape("a\"b\\c") == "a\\\"b\\\\c");
    CHECK(json_escape(std::string("\x01\n\t\x7f", 4)) == "\\u0001\\n\\t\\u007f");
    CHECK(json_escape(std::string("nul\0x", 5)) == "nul\\u0000x");
    CHECK(json_escape("caf\xc3\xa9") == "caf\xc3\xa9");               // valid UTF-8 kept
    CHECK(json_escape("\xff\xfe") == "\\u00ff\\u00fe");                // invalid bytes escaped
    CHECK(json_escape("\xc3") == "\\u00c3");                           // cut sequence
    CHECK(json_escape("\xc0\xaf") == "\\u00c0\\u00af");                // overlong
    CHECK(json_escape("\xed\xa0\x80") == "\\u00ed\\u00a0\\u0080");     // surrogate
    CHECK(json_escape("\xf0\x9f\x98\x80") == "\xf0\x9f\x98\x80");      // 4-byte kept
}

TEST_CASE("the security_socket_connect JSON contract")
{
    SecuritySocketConnect ev;
    ev.process.timestamp_ns = 1700000000000000000ULL;
    ev.process.pid = 42;
    ev.process.tid = 43;
    ev.process.ppid = 1;
    ev.process.uid = 0;
    ev.process.gid = 0;
    ev.process.comm = "cu\"rl";
    ev.process.cgroup_id = 9;
    ev.process.ns = {1, 2, 3, 4, 5, 6, 7};
    ev.sockfd = 3;
    ev.type = SocketType::stream;
    ev.via = ConnectVia::fastopen;
    std::uint8_t ip[4] = {127, 0, 0, 1};
    ev.remote_addr = InetEndpoint{IpAddress::v4(ip), 80, 0, 0};
    ev.connect_id = 1099511627777ULL;
    ev.sequence = 12;
    CHECK(to_json(ev) ==
          "{\"event\":\"security_socket_connect\",\"schema\":1,\"seq\":12,\"connect_id\":1099511627777,"
          "\"timestamp\":1700000000000000000,\"pid\":42,\"tid\":43,"
          "\"ppid\":1,\"uid\":0,\"gid\":0,\"comm\":\"cu\\\"rl\",\"cgroup_id\":9,\"container_id\":\"\",\"mnt_ns\":1,\"net_ns\":2,"
          "\"pid_ns\":3,\"user_ns\":4,\"uts_ns\":5,\"ipc_ns\":6,\"cgroup_ns\":7,\"sockfd\":3,"
          "\"type\":\"SOCK_STREAM\",\"remote_addr\":{\"family\":\"AF_INET\",\"ip\":\"127.0.0.1\",\"port\":80},"
          "\"toctou\":false,\"via\":\"fastopen\",\"late\":false}");
    ev.late = true;
    ev.toctou = true;
    CHECK(to_json(ev).find("\"toctou\":true,\"via\":\"fastopen\",\"late\":true}") != std::string::npos);
    ev.process.container_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    CHECK(to_json(ev).find("\"cgroup_id\":9,\"container_id\":\"0123456789abcdef0123456789abcdef"
                           "0123456789abcdef0123456789abcdef\",\"mnt_ns\":1,") != std::string::npos);
}

TEST_CASE("the connect_outcome JSON contract")
{
    ConnectOutcome o;
    o.connect_id = 7;
    o.sequence = 9;
    o.timestamp_ns = 1700000000000000001ULL;
    o.duration_ns = 250000;
    o.pid = 42;
    o.tid = 43;
    o.via = ConnectVia::connect;
    o.result = -ECONNREFUSED;
    o.lsm = LsmVerdict::allowed;
    o.tcp = TcpResult::refused;
    o.tcp_error = ECONNREFUSED;
    std::uint8_t ip[4] = {127, 0, 0, 1};
    o.local = InetEndpoint{IpAddress::v4(ip), 40000, 0, 0};
    o.socket_cookie = 4097;
    CHECK(to_json(o) ==
          "{\"event\":\"connect_outcome\",\"schema\":1,\"seq\":9,\"connect_id\":7,"
          "\"timestamp\":1700000000000000001,\"pid\":42,\"tid\":43,\"via\":\"connect\",\"outcome\":\"refused\","
          "\"result\":-111,\"error\":\"ECONNREFUSED\",\"lsm\":\"allowed\",\"lsm_error\":0,\"tcp\":\"refused\","
          "\"tcp_error\":111,\"duration_ns\":250000,"
          "\"local_addr\":{\"family\":\"AF_INET\",\"ip\":\"127.0.0.1\",\"port\":40000},\"socket_cookie\":4097}");
    o.result.reset();
    o.local.reset();
    o.tcp = TcpResult::none;
    o.tcp_error = 0;
    o.lsm = LsmVerdict::unknown;
    const auto j = to_json(o);
    CHECK(j.find("\"outcome\":\"unknown\",\"result\":null,\"error\":\"\",\"lsm\":\"unknown\"") != std::string::npos);
    CHECK(j.find("\"local_addr\":null,") != std::string::npos);
}

TEST_CASE("every connect path has its JSON name")
{
    CHECK(connect_via_name(ConnectVia::unknown) == "unknown");
    CHECK(connect_via_name(ConnectVia::connect) == "connect");
    CHECK(connect_via_name(ConnectVia::fastopen) == "fastopen");
    CHECK(connect_via_name(ConnectVia::io_uring) == "io_uring");
    CHECK(connect_via_name(static_cast<ConnectVia>(99)) == "unknown");
}

TEST_CASE("net_tcp_connect and stats JSON")
{
    NetTcpConnect t;
    t.sockfd = -1;
    t.dst_ip = "127.0.0.88";
    t.dst_port = 8088;
    t.results = {"www.example.test", "edge.cdn.test"};
    t.process.container_id = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    auto j = to_json(t);
    CHECK(j.rfind("{\"event\":\"net_tcp_connect\",\"schema\":1,\"seq\":0,\"connect_id\":0,\"timestamp\":0,", 0) == 0);
    CHECK(j.find(",\"cgroup_id\":0,\"container_id\":\"fedcba9876543210fedcba9876543210fedcba9876543210"
                 "fedcba9876543210\",\"mnt_ns\":0,") != std::string::npos);
    CHECK(j.find(",\"sockfd\":-1,\"dst_ip\":\"127.0.0.88\",\"dst_port\":8088,"
                 "\"results\":[\"www.example.test\",\"edge.cdn.test\"],\"via\":\"unknown\"}") !=
          std::string::npos);
    t.results.clear();
    t.via = ConnectVia::io_uring;
    CHECK(to_json(t).find("\"results\":[],\"via\":\"io_uring\"}") != std::string::npos);

    Stats s;
    s.events = 5;
    s.lost = 2;
    auto js = to_json(s, "cgroup");
    CHECK(js.rfind("{\"event\":\"stats\",\"schema\":1,\"events\":5,\"lost\":2,", 0) == 0);
    CHECK(js.find("\"backend\":\"cgroup\"}") != std::string::npos);
}

TEST_CASE("address JSON and text forms")
{
    std::uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    SocketAddress a6 = InetEndpoint{IpAddress::v6(v6), 443, 0, 0};
    CHECK(to_json(a6) == "{\"family\":\"AF_INET6\",\"ip\":\"2001:db8::1\",\"port\":443}");
    CHECK(to_string(a6) == "[2001:db8::1]:443");
    SocketAddress abs = UnixEndpoint{UnixEndpoint::Kind::abstract, std::string("a\0b", 3)};
    CHECK(to_json(abs) == "{\"family\":\"AF_UNIX\",\"path\":\"@a\\u0000b\"}");
    SocketAddress unnamed = UnixEndpoint{UnixEndpoint::Kind::unnamed, ""};
    CHECK(to_json(unnamed) == "{\"family\":\"AF_UNIX\",\"path\":\"\"}");
    SocketAddress unknown = UnknownAddress{0, 8};
    CHECK(to_json(unknown) == "{\"family\":\"AF_UNSPEC\",\"addrlen\":8}");
    CHECK(socket_type_name(SocketType::seqpacket) == "SOCK_SEQPACKET");
    CHECK(socket_type_name(static_cast<SocketType>(9)) == "SOCK_9");
}
