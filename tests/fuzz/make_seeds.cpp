// Writes the seed corpora of the fuzz targets: valid inputs the fuzzers start
// from, so they spend their time past the first length checks.
//   connscope-fuzz-seeds DIR   ->  DIR/dns/*  DIR/record/*
#include "../unit/dns_builder.hpp"

#include "wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using dnstest::Bytes;

void write_file(const std::string &path, const Bytes &bytes)
{
    FILE *f = std::fopen(path.c_str(), "wb");
    if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fclose(f) != 0) {
        std::fprintf(stderr, "connscope-fuzz-seeds: writing %s: %s\n", path.c_str(), std::strerror(errno));
        std::exit(1);
    }
}

void make_dir(const std::string &path)
{
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
        std::fprintf(stderr, "connscope-fuzz-seeds: mkdir %s: %s\n", path.c_str(), std::strerror(errno));
        std::exit(1);
    }
}

template <typename T>
Bytes bytes_of(const T &value)
{
    const auto *p = reinterpret_cast<const std::uint8_t *>(&value);
    return Bytes(p, p + sizeof(value));
}

std::vector<Bytes> dns_messages()
{
    std::vector<Bytes> out{dnstest::captured_a_response, dnstest::captured_aaaa_response};
    out.push_back(dnstest::Builder(7)
                      .compress()
                      .question("api.example.test")
                      .cname("api.example.test", "lb.example.test", 0)
                      .a("lb.example.test", "192.0.2.10", 60)
                      .a("lb.example.test", "192.0.2.11", 60)
                      .aaaa("lb.example.test", "2001:db8::10", 60)
                      .build());
    out.push_back(dnstest::Builder(8).question("x.test", 28).aaaa("x.test", "fe80::1", 5).build());
    // An NXDOMAIN with no answers, and a record type the parser skips.
    out.push_back(dnstest::Builder(9, 0x8183).question("nowhere.test").build());
    out.push_back(dnstest::Builder(10)
                      .question("txt.test", 16)
                      .record("txt.test", 16, 30, {4, 't', 'e', 'x', 't'})
                      .a("txt.test", "10.0.0.1")
                      .build());
    return out;
}

cs_connect_record connect_record()
{
    cs_connect_record r{};
    r.hdr.type = CS_REC_CONNECT;
    r.hdr.size = sizeof(r);
    r.hdr.boot_ns = 123456789;
    r.proc.pid = 4242;
    r.proc.tid = 4243;
    r.proc.ppid = 1;
    r.proc.uid = 1000;
    r.proc.gid = 1000;
    r.proc.cgroup_id = 0x1234;
    r.proc.net_ns = 0xf0000000;
    std::memcpy(r.proc.comm, "curl", 4);
    r.sockfd = 3;
    r.sock_type = SOCK_STREAM;
    r.hook = CS_HOOK_CGROUP;
    r.connect_id = 1099511627777ULL;
    return r;
}

Bytes outcome_record(std::uint16_t flags, std::int32_t result, std::uint16_t state, std::int32_t sk_err)
{
    cs_outcome_record r{};
    r.hdr.type = CS_REC_OUTCOME;
    r.hdr.size = sizeof(r);
    r.hdr.boot_ns = 123457000;
    r.out.connect_id = 1099511627777ULL;
    r.out.attempt_boot_ns = 123456789;
    r.out.end_boot_ns = 123456999;
    r.out.cookie = 4097;
    r.out.pid = 4242;
    r.out.tid = 4243;
    r.out.result = result;
    r.out.sk_err = sk_err;
    r.out.flags = flags;
    r.out.tcp_state = state;
    r.out.local_family = AF_INET;
    r.out.local_port = 40000;
    const std::uint8_t lo[4] = {127, 0, 0, 1};
    std::memcpy(r.out.local_addr, lo, 4);
    r.out.via = CS_VIA_CONNECT;
    return bytes_of(r);
}

template <typename Sockaddr>
Bytes connect_with(const Sockaddr &sa, std::uint32_t addrlen, std::uint16_t flags = 0)
{
    cs_connect_record r = connect_record();
    std::memcpy(r.addr, &sa, sizeof(sa) < sizeof(r.addr) ? sizeof(sa) : sizeof(r.addr));
    r.addrlen = addrlen;
    r.flags = flags;
    return bytes_of(r);
}

Bytes dns_record(const Bytes &payload)
{
    cs_dns_record r{};
    r.hdr.type = CS_REC_DNS;
    r.hdr.size = static_cast<__u32>(sizeof(r) + payload.size());
    r.hdr.boot_ns = 123456000;
    r.net_ns = 0xf0000000;
    r.sport = 53;
    r.dport = 40000;
    r.captured = static_cast<__u16>(payload.size());
    r.orig_len = static_cast<__u32>(payload.size());
    const std::uint8_t lo[4] = {127, 0, 0, 53};
    std::memcpy(r.saddr, lo, 4);
    std::memcpy(r.daddr, lo, 4);
    Bytes out = bytes_of(r);
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

std::vector<Bytes> records()
{
    std::vector<Bytes> out;
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(443);
    ::inet_pton(AF_INET, "127.0.0.88", &sin.sin_addr);
    out.push_back(connect_with(sin, sizeof(sin)));
    out.push_back(connect_with(sin, sizeof(sin), CS_CONNECT_TOCTOU));
    out.push_back(connect_with(sin, sizeof(sin), CS_CONNECT_ADDR_FAULT));
    out.push_back(connect_with(sin, sizeof(sin), CS_CONNECT_LATE | CS_CONNECT_TOCTOU));
    out.push_back(outcome_record(CS_OUTCOME_RESULT | CS_OUTCOME_TCP | CS_OUTCOME_LOCAL | CS_OUTCOME_LSM_KNOWN, 0,
                                 CS_TCP_ESTABLISHED, 0));
    out.push_back(outcome_record(CS_OUTCOME_RESULT | CS_OUTCOME_TCP | CS_OUTCOME_LOCAL, -111, CS_TCP_CLOSE, 111));
    out.push_back(outcome_record(CS_OUTCOME_RESULT | CS_OUTCOME_LSM_KNOWN, -13, 0, 0));

    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(80);
    sin6.sin6_scope_id = 2;
    ::inet_pton(AF_INET6, "fe80::88", &sin6.sin6_addr);
    out.push_back(connect_with(sin6, sizeof(sin6)));
    out.push_back(connect_with(sin6, 24)); // RFC 2133 length: no scope id

    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strcpy(sun.sun_path, "/run/dbus/system_bus_socket");
    out.push_back(connect_with(sun, static_cast<std::uint32_t>(offsetof(sockaddr_un, sun_path) + 28)));
    sun.sun_path[0] = '\0'; // abstract
    out.push_back(connect_with(sun, static_cast<std::uint32_t>(offsetof(sockaddr_un, sun_path) + 10)));
    out.push_back(connect_with(sun, 2)); // unnamed
    std::memset(sun.sun_path, '\xc3', sizeof(sun.sun_path)); // 108 bytes, no NUL, not UTF-8
    out.push_back(connect_with(sun, sizeof(sun)));

    for (const auto &message : dns_messages()) {
        Bytes rec = dns_record(message);
        out.push_back(rec);
        // A DNS record followed by the connect it names.
        Bytes both = rec;
        Bytes conn = connect_with(sin, sizeof(sin));
        both.insert(both.end(), conn.begin(), conn.end());
        out.push_back(both);
    }

    // Raw sockaddr inputs (addrlen, fault flag, bytes) for the third path.
    Bytes raw = bytes_of(static_cast<std::uint32_t>(sizeof(sin6)));
    raw.push_back(0);
    Bytes addr = bytes_of(sin6);
    raw.insert(raw.end(), addr.begin(), addr.end());
    out.push_back(raw);
    return out;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    make_dir(dir);
    make_dir(dir + "/dns");
    make_dir(dir + "/record");
    int n = 0;
    for (const auto &m : dns_messages()) {
        write_file(dir + "/dns/seed-" + std::to_string(n++), m);
        write_file(dir + "/dns/seed-" + std::to_string(n++), dnstest::tcp_frame(m));
    }
    n = 0;
    for (const auto &r : records())
        write_file(dir + "/record/seed-" + std::to_string(n++), r);
    return 0;
}
