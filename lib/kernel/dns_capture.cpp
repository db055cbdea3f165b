// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "dns_capture.hpp"

#include "connscope_dns.skel.h"
#include "error_impl.hpp"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace connscope::detail {
namespace {

enum class Role {
    mark,    // cgroup hooks in the querying process: required
    premark, // the walk at start: optional, 5.11 and later
    ingress, // the capture itself: required
};

struct DnsProgram {
    const char *name; // in the DNS object
    const char *hook; // as users know it
    Role role;
};

// In attach order: the marks first, then the walk, then ingress, so a socket
// that queries after the walk has started is marked by a hook.
constexpr DnsProgram dns_programs[] = {
    {"handle_dns_connect4", "cgroup/connect4", Role::mark},
    {"handle_dns_connect6", "cgroup/connect6", Role::mark},
    {"handle_dns_sendmsg4", "cgroup/sendmsg4", Role::mark},
    {"handle_dns_sendmsg6", "cgroup/sendmsg6", Role::mark},
    {"handle_dns_iter_tcp", "iter/tcp", Role::premark},
    {"handle_dns_iter_udp", "iter/udp", Role::premark},
    {"handle_dns_ingress", "cgroup_skb/ingress", Role::ingress},
};
constexpr std::size_t program_count = sizeof(dns_programs) / sizeof(dns_programs[0]);

// libbpf retries a refused program with log level 1 into this buffer, which
// also tells which program it was (loading stops at the first refusal).
constexpr std::size_t verifier_log_size = 256 * 1024;

bpf_program *find(connscope_dns_bpf *skel, const DnsProgram &p)
{
    return bpf_object__find_program_by_name(skel->obj, p.name);
}

// The verifier's verdict: the last line of its log before the statistics.
std::string verifier_reason(const std::vector<char> &log)
{
    std::string text(log.data(), strnlen(log.data(), log.size()));
    while (!text.empty()) {
        while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
            text.pop_back();
        const std::size_t start = text.rfind('\n') + 1; // npos + 1 == 0
        std::string line = text.substr(start);
        text.erase(start);
        if (line.empty() || line.rfind("processed ", 0) == 0 || line.rfind("verification time", 0) == 0 ||
            line.rfind("stack depth", 0) == 0)
            continue;
        return line;
    }
    return {};
}

// Whether the running kernel has a helper, from the bpf_func_id enum in its BTF.
bool kernel_has_helper(const char *enumerator)
{
    btf *vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux)
        return true; // cannot tell: do not claim it is missing
    bool found = false;
    const __s32 id = btf__find_by_name_kind(vmlinux, "bpf_func_id", BTF_KIND_ENUM);
    if (id > 0) {
        const btf_type *t = btf__type_by_id(vmlinux, id);
        const struct btf_enum *e = btf_enum(t);
        for (int i = 0; i < btf_vlen(t) && !found; ++i)
            found = std::strcmp(btf__name_by_offset(vmlinux, e[i].name_off), enumerator) == 0;
    }
    btf__free(vmlinux);
    return found;
}

struct LoadResult {
    connscope_dns_bpf *skel = nullptr; // loaded, or nullptr
    const DnsProgram *refused = nullptr; // the program the kernel refused, when known
    std::string reason;                  // why, for the status
};

LoadResult open_and_load(const DnsOptions &options, const LoadSettings &settings, int ring_map_fd, int lost_map_fd,
                         bool with_premark)
{
    LoadResult r;
    connscope_dns_bpf *skel = connscope_dns_bpf__open();
    if (!skel) {
        r.reason = "opening the DNS BPF object: " + errno_text(errno);
        return r;
    }
    int err = bpf_map__reuse_fd(skel->maps.events_rb, ring_map_fd);
    if (!err)
        err = bpf_map__reuse_fd(skel->maps.lost_counts, lost_map_fd);
    if (err) {
        connscope_dns_bpf__destroy(skel);
        r.reason = "sharing the ring buffer with the DNS programs: " + errno_text(-err);
        return r;
    }
    skel->rodata->wakeup_watermark = settings.wakeup_watermark;
    skel->rodata->dns_payload_max = options.payload_max;
    // Half the ring is the connect records' alone: a DNS flood cannot crowd them out.
    skel->rodata->dns_ring_limit = settings.ring_size / 2;
    skel->rodata->dns_port_count = static_cast<__u32>(options.ports.size());
    for (std::size_t i = 0; i < options.ports.size(); ++i)
        skel->rodata->dns_ports[i] = options.ports[i];

    std::vector<std::vector<char>> logs(program_count);
    for (std::size_t i = 0; i < program_count; ++i) {
        bpf_program *prog = find(skel, dns_programs[i]);
        if (dns_programs[i].role == Role::premark && !with_premark) {
            bpf_program__set_autoload(prog, false);
            continue;
        }
        logs[i].assign(verifier_log_size, '\0');
        bpf_program__set_log_buf(prog, logs[i].data(), logs[i].size());
    }
    err = connscope_dns_bpf__load(skel);
    if (!err) {
        r.skel = skel;
        return r;
    }
    connscope_dns_bpf__destroy(skel);
    for (std::size_t i = 0; i < program_count; ++i) {
        if (logs[i].empty() || logs[i][0] == '\0')
            continue;
        r.refused = &dns_programs[i];
        r.reason = std::string(r.refused->hook) + ": " + errno_text(-err);
        const std::string verdict = verifier_reason(logs[i]);
        if (-err == ENOSPC)
            r.reason += " (the verifier's log is longer than " + std::to_string(verifier_log_size / 1024) + " KiB)";
        else if (!verdict.empty())
            r.reason += "; verifier: " + verdict;
        return r;
    }
    r.reason = "the DNS BPF object: " + errno_text(-err);
    return r;
}

// Runs an iterator once to its end; "" on success, else what failed.
std::string walk(bpf_program *prog, const char *hook)
{
    bpf_link *link = bpf_program__attach_iter(prog, nullptr);
    if (!link)
        return std::string("attaching ") + hook + ": " + errno_text(errno);
    std::string failed;
    int fd = bpf_iter_create(bpf_link__fd(link));
    if (fd < 0) {
        failed = std::string("creating the ") + hook + " iterator: " + errno_text(errno);
    } else {
        char buf[64];
        for (;;) {
            ssize_t n = ::read(fd, buf, sizeof(buf));
            if (n > 0)
                continue;
            if (n == 0)
                break;
            // EAGAIN: a read visits at most a million sockets when the
            // program prints nothing; the next read goes on from there.
            if (errno == EAGAIN || errno == EINTR)
                continue;
            failed = std::string("reading the ") + hook + " iterator: " + errno_text(errno);
            break;
        }
        ::close(fd);
    }
    bpf_link__destroy(link);
    return failed;
}

} // namespace

DnsCapture::DnsCapture(const DnsOptions &options, const LoadSettings &settings, int ring_map_fd,
                       int lost_map_fd)
{
    start(options, settings, ring_map_fd, lost_map_fd);
}

DnsCapture::~DnsCapture() { release(); }

void DnsCapture::release() noexcept
{
    links_.clear(); // before the skeleton: they refer to its programs
    connscope_dns_bpf__destroy(skel_);
    skel_ = nullptr;
}

void DnsCapture::off(const std::string &why)
{
    status_ = "off: " + why;
    release();
}

void DnsCapture::start(const DnsOptions &options, const LoadSettings &settings, int ring_map_fd, int lost_map_fd)
{
    if (!settings.cgroup)
        return off(settings.cgroup_missing + " (so cgroup_skb/ingress cannot be attached)");

    // Where the kernel refuses the walk, the capture runs without it. A
    // refusal libbpf meets before the kernel (no iter/tcp target in its BTF
    // before 5.9) names no program: then the walk goes too.
    std::string before_start;
    LoadResult loaded = open_and_load(options, settings, ring_map_fd, lost_map_fd, true);
    if (!loaded.skel && (!loaded.refused || loaded.refused->role == Role::premark)) {
        const std::string refused = loaded.refused ? "the kernel refused " + loaded.reason
                                                   : "loading with iter/tcp, iter/udp: " + loaded.reason;
        // bpf_sk_storage_get in iterators came with Linux 5.11, as did
        // bpf_sock_from_file, whose id the kernel's BTF lists from then on.
        if (!kernel_has_helper("BPF_FUNC_sock_from_file"))
            before_start = "not attributed (iterator sk_storage needs Linux 5.11; " + refused + ")";
        else
            before_start = "not attributed (" + refused + ")";
        loaded = open_and_load(options, settings, ring_map_fd, lost_map_fd, false);
    }
    if (!loaded.skel)
        return off("loading " + loaded.reason);
    skel_ = loaded.skel;

    const int cg = settings.cgroup->fd;
    std::string failed, walked, walk_failed;
    for (const auto &p : dns_programs) {
        bpf_program *prog = find(skel_, p);
        if (p.role == Role::premark) {
            if (!bpf_program__autoload(prog))
                continue;
            const std::string why = walk(prog, p.hook);
            if (why.empty())
                walked += (walked.empty() ? "" : ", ") + std::string(p.hook);
            else
                walk_failed += (walk_failed.empty() ? "" : "; ") + why;
            continue;
        }
        bpf_link *link = bpf_program__attach_cgroup(prog, cg);
        if (!link) {
            failed = std::string("attaching ") + p.hook + ": " + errno_text(errno);
            break;
        }
        links_.emplace_back(link, prog, std::string(p.hook) + " (DNS capture)", settings.cgroup);
    }
    if (!failed.empty())
        return off(failed);
    if (!walked.empty())
        before_start = "marked by " + walked + " in this network namespace only (" +
                       std::to_string(skel_->bss->dns_premarked) + " found)";
    if (!walk_failed.empty())
        before_start += (walked.empty() ? "not attributed (" : "; not walked (") + walk_failed + ")";

    std::string ports;
    for (auto port : options.ports)
        ports += (ports.empty() ? "" : ",") + std::to_string(port);
    status_ = "on: cgroup_skb/ingress + cgroup connect/sendmsg marks on " + settings.cgroup->name() +
              ", UDP and TCP from port" + (options.ports.size() > 1 ? "s " : " ") + ports +
              "; sockets open before the start: " + before_start;
}

} // namespace connscope::detail
