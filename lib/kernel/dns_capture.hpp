// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The DNS capture object (bpf/dns.bpf.c, bpf/dns_mark.bpf.c): loaded, sharing
// the connect object's ring and loss counters so one ring keeps the order, and
// attached to the cgroup v2 root. The cgroup connect/sendmsg programs mark the
// sockets that send to a DNS port with the sender's network namespace,
// cgroup_skb/ingress captures answers to marked sockets, and an iter/tcp and
// iter/udp walk at start marks the sockets of this network namespace already
// connected to a DNS port, where the kernel (5.11) lets an iterator do that. A kernel that refuses the capture
// leaves the Session running without DNS names; status() says why, and what
// part of the capture this kernel lacks.
#pragma once

#include <connscope/session.hpp>

#include "backend.hpp"
#include "links.hpp"

#include <string>
#include <vector>

struct bpf_link;
struct connscope_dns_bpf;

namespace connscope::detail {

class DnsCapture {
public:
    // Never throws for a kernel's refusal: status() reports it.
    DnsCapture(const DnsOptions &options, const LoadSettings &settings, int ring_map_fd, int lost_map_fd);
    ~DnsCapture();
    DnsCapture(const DnsCapture &) = delete;
    DnsCapture &operator=(const DnsCapture &) = delete;

    bool on() const { return !links_.empty(); }
    // "on: cgroup_skb/ingress + cgroup connect/sendmsg marks on ..., UDP and TCP
    // from port 53; sockets open before the start: ..." or "off: <why>".
    const std::string &status() const { return status_; }
    // Every program attached, for the liveness check.
    OwnedLinks &links() { return links_; }

private:
    void start(const DnsOptions &options, const LoadSettings &settings, int ring_map_fd, int lost_map_fd);
    void off(const std::string &why);
    void release() noexcept;

    connscope_dns_bpf *skel_ = nullptr;
    OwnedLinks links_; // every program attached, or none
    std::string status_;
};

} // namespace connscope::detail
