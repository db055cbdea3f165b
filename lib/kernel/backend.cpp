// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Loading and attaching a backend as its description says.
#include "backend.hpp"

#include "connscope_connect.skel.h"
#include "error_impl.hpp"
#include "host.hpp"
#include "log.hpp"

#include <algorithm>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <linux/bpf.h>
#include <memory>
#include <unistd.h>

namespace connscope::detail {

AttachedBackend::AttachedBackend(AttachedBackend &&other) noexcept
    : skel(other.skel), links(std::move(other.links)), gaps(std::move(other.gaps)),
      detail(std::move(other.detail))
{
    other.skel = nullptr;
    other.links.clear();
}

AttachedBackend &AttachedBackend::operator=(AttachedBackend &&other) noexcept
{
    if (this != &other) {
        release();
        skel = other.skel;
        links = std::move(other.links);
        gaps = std::move(other.gaps);
        detail = std::move(other.detail);
        other.skel = nullptr;
        other.links.clear();
    }
    return *this;
}

AttachedBackend::~AttachedBackend() { release(); }

void AttachedBackend::release() noexcept
{
    links.clear(); // before the skeleton: they refer to its programs
    connscope_connect_bpf__destroy(skel);
    skel = nullptr;
}

const BackendDescription *find_backend(const std::string &name)
{
    for (const auto &b : backend_table())
        if (name == b.name)
            return &b;
    return nullptr;
}

namespace {

// "step: EINVAL: Invalid argument; the verifier says: ...; what to do"
[[noreturn]] void fail(const std::string &step, const Refusal &refusal, const std::string &remedy)
{
    std::string reason = step + ": " + errno_text(refusal.err);
    if (!refusal.kernel_says.empty())
        reason += "; the verifier says: " + refusal.kernel_says;
    if (!remedy.empty())
        reason += "; " + remedy;
    throw BackendFailure(refusal.err, reason);
}

// --- What the verifier's log says -------------------------------------------

#define CS_HELPER_NAME(x) "bpf_" #x
// Every helper the build's UAPI header knows, by id (enum bpf_func_id).
const char *const helper_names[] = {__BPF_FUNC_MAPPER(CS_HELPER_NAME)};
#undef CS_HELPER_NAME

struct HelperHistory {
    int id;
    const char *since; // the Linux release that brought it
    const char *note;  // nullptr, or what else the user should know
};

// The helpers bpf/ calls that a kernel still in use may lack.
constexpr HelperHistory helper_history[] = {
    {BPF_FUNC_get_current_cgroup_id, "4.18", nullptr},
    {BPF_FUNC_sk_storage_get, "5.2", nullptr},
    {BPF_FUNC_probe_read_user, "5.5", nullptr},
    {BPF_FUNC_probe_read_kernel, "5.5", "networking and cgroup programs have it from 5.10, with CAP_PERFMON"},
    {BPF_FUNC_ktime_get_boot_ns, "5.8", nullptr},
    {BPF_FUNC_ringbuf_output, "5.8", nullptr},
    {BPF_FUNC_ringbuf_reserve, "5.8", nullptr},
    {BPF_FUNC_ringbuf_submit, "5.8", nullptr},
    {BPF_FUNC_ringbuf_query, "5.8", nullptr},
    {BPF_FUNC_get_current_task_btf, "5.11", "cgroup and other non-tracing programs have it from 5.15"},
};

const HelperHistory *helper_history_of(int id)
{
    for (const auto &h : helper_history)
        if (h.id == id)
            return &h;
    return nullptr;
}

std::string helper_name(int id)
{
    if (id >= 0 && static_cast<std::size_t>(id) < sizeof(helper_names) / sizeof(helper_names[0]))
        return helper_names[id];
    return {};
}

bool starts_with(const std::string &s, const char *prefix) { return s.rfind(prefix, 0) == 0; }

// Lines of a verifier log that only trace the walk or count it: the
// instructions, register states and source lines before the reason, and the
// statistics after it.
bool is_trace_line(const std::string &line)
{
    std::size_t i = line.find_first_not_of(" \t");
    if (i == std::string::npos)
        return true;
    const std::string l = line.substr(i);
    for (const char *p : {"processed ", "verification time", "stack depth", "from ", "last_idx ", "regs=",
                          "parent ", "mark_precise", ";", "caller:", "callee:", "frame"})
        if (starts_with(l, p))
            return true;
    // "12: (85) call ...", "12: R1=ctx() ..."; but not libbpf's "12: <invalid CO-RE relocation>",
    // which is followed by its own reason line anyway.
    std::size_t d = 0;
    while (d < l.size() && std::isdigit(static_cast<unsigned char>(l[d])))
        ++d;
    if (d > 0 && d < l.size() && l[d] == ':')
        return true;
    // "R1_w=..." or "R0=..." (a state), unlike "R1 invalid mem access 'scalar'" (a reason).
    if (l.size() > 2 && l[0] == 'R' && std::isdigit(static_cast<unsigned char>(l[1]))) {
        std::size_t e = l.find_first_of(" =");
        return e != std::string::npos && l[e] == '=';
    }
    return false;
}

} // namespace

std::string verifier_reason(const char *log)
{
    std::vector<std::string> lines;
    for (const char *p = log; *p;) {
        const char *nl = std::strchr(p, '\n');
        std::size_t len = nl ? static_cast<std::size_t>(nl - p) : std::strlen(p);
        lines.emplace_back(p, len);
        p += len + (nl ? 1 : 0);
    }
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
        if (is_trace_line(*it))
            continue;
        constexpr std::size_t max = 300;
        return it->size() > max ? it->substr(0, max) + "..." : *it;
    }
    return {};
}

namespace {

// What to do about a cause the verifier named that is the same for every
// backend: a helper, kfunc or kernel type this kernel lacks. "" otherwise.
std::string verifier_remedy(const std::string &says, const ProgramSpec &spec)
{
    const std::string release = host::kernel_release();
    int id = 0;
    char name[128] = {};
    if (std::sscanf(says.c_str(), "invalid func unknown#%d", &id) == 1) {
        const std::string helper = helper_name(id);
        const HelperHistory *h = helper_history_of(id);
        std::string out = "this kernel (" + release + ") does not know BPF helper " + std::to_string(id);
        if (!helper.empty())
            out += " (" + helper + (h ? std::string(", new in Linux ") + h->since : std::string()) + ")";
        return out + "; use a newer kernel or another backend";
    }
    if (std::sscanf(says.c_str(), "unknown func %127[^#]#%d", name, &id) == 2) {
        const HelperHistory *h = helper_history_of(id);
        std::string out = std::string("this kernel (") + release + ") has " + name + " but does not offer it to " +
                          spec.hook + " programs";
        if (h && h->note)
            out += std::string(" (") + h->note + ")";
        const auto missing = host::missing_capabilities();
        if (!missing.empty())
            out += "; some helpers are offered only with CAP_PERFMON or CAP_BPF, and this process lacks " + missing;
        return out + "; use another backend";
    }
    if (std::sscanf(says.c_str(), "calling kernel function %127s is not allowed", name) == 1)
        return std::string("this kernel (") + release + ") does not offer the kfunc " + name + " to " + spec.hook +
               " programs; use another backend";
    if (starts_with(says, "failed to resolve CO-RE relocation"))
        return "this kernel (" + release + ") lacks a type or field the program reads, by its BTF; use another "
               "backend, and report this message";
    return {};
}

// Before Linux 5.11 BPF maps and programs count against RLIMIT_MEMLOCK, and
// bpf() says only EPERM when they do not fit.
std::string memlock_remedy(const Refusal &refusal)
{
    if (refusal.err != EPERM || !refusal.kernel_says.empty())
        return {};
    const auto limit = host::bpf_memlock_limit();
    if (!limit)
        return {};
    return "this kernel (" + host::kernel_release() + ") charges BPF memory to RLIMIT_MEMLOCK (memory cgroup "
           "accounting came in Linux 5.11) and the limit is " + std::to_string(*limit / 1024) +
           " KiB; raise it (ulimit -l unlimited, LimitMEMLOCK=infinity in a systemd unit) or grant "
           "CAP_SYS_RESOURCE so it can be raised";
}

// Before Linux 6.2 the kernel has no bpf_cast_to_kern_ctx, the kfunc the
// cgroup programs of the connect object may call (weak); libbpf then looks
// for it in the kernel modules' BTF, and listing those (BPF_BTF_GET_NEXT_ID)
// takes CAP_SYS_ADMIN: without it the whole object fails with EINVAL.
std::string module_btf_remedy(const Refusal &refusal)
{
    constexpr int cap_sys_admin = 21;
    if (refusal.err != EINVAL || !refusal.kernel_says.empty() || host::kernel_btf_has_name("bpf_cast_to_kern_ctx") ||
        host::has_effective_capability(cap_sys_admin))
        return {};
    return "libbpf could not list the kernel modules' BTF to resolve the optional kfunc bpf_cast_to_kern_ctx, "
           "which this kernel (" + host::kernel_release() + ") lacks: that takes CAP_SYS_ADMIN before Linux 6.2; "
           "grant CAP_SYS_ADMIN (docs/deploy.md)";
}

const Variant &choose_variant(const BackendDescription &backend)
{
    for (const auto &v : backend.variants)
        if (!v.usable || v.usable())
            return v;
    return backend.variants.back(); // the last one is the fallback of its backend
}

bool uses_cgroup(const std::vector<const ProgramSpec *> &programs)
{
    for (const auto *p : programs)
        if (p->attach == AttachKind::cgroup)
            return true;
    return false;
}

std::string join_hooks(const std::vector<const ProgramSpec *> &programs)
{
    std::string out;
    for (const auto *p : programs)
        out += (out.empty() ? "" : ", ") + std::string(p->hook);
    return out;
}

bpf_program *program(connscope_connect_bpf *skel, const ProgramSpec &spec)
{
    bpf_program *prog = bpf_object__find_program_by_name(skel->obj, spec.program);
    if (!prog)
        throw BackendFailure(EINVAL, std::string("internal: the connect object has no program ") + spec.program);
    return prog;
}

// Opens the object with only `programs` to be loaded, and the settings applied.
connscope_connect_bpf *open_with(const std::vector<const ProgramSpec *> &programs, const LoadSettings &settings)
{
    connscope_connect_bpf *skel = connscope_connect_bpf__open();
    if (!skel)
        fail("opening the connect BPF object", {Refusal::Step::load, errno, {}}, "");
    bpf_program *prog;
    bpf_object__for_each_program(prog, skel->obj) bpf_program__set_autoload(prog, false);
    for (const auto *spec : programs) {
        prog = program(skel, *spec);
        bpf_program__set_autoload(prog, true);
        if (spec->expected_attach_type >= 0)
            bpf_program__set_expected_attach_type(prog, static_cast<bpf_attach_type>(spec->expected_attach_type));
    }
    bpf_map__set_max_entries(skel->maps.events_rb, static_cast<__u32>(settings.ring_size));
    skel->rodata->wakeup_watermark = settings.wakeup_watermark;
    skel->rodata->thread_size = host::kernel_thread_size();
    skel->rodata->track_outcomes = settings.outcomes;
    skel->rodata->mark_attempts = !settings.outcomes && settings.late_records;
    skel->rodata->late_records = settings.late_records;
    // bpf_get_socket_cookie takes a socket in tracing programs from 5.12.
    static const bool cookie_in_tracing = host::kernel_btf_has_name("bpf_get_socket_ptr_cookie");
    skel->rodata->cookie_in_tracing = cookie_in_tracing;
    return skel;
}

// --- Loading with the verifier's log at hand -------------------------------

// Per-program buffers for the verifier's log. libbpf (>= 0.7) loads every
// program without a log first and, only when the kernel refuses one, loads
// that one again with log level 1 into its buffer: a load that succeeds
// costs nothing more, and a buffer's pages are touched only when the kernel
// writes to them. libbpf reads the buffers during the load only (a loaded
// object takes no new ones), so they need not outlive it.
class VerifierLogs {
public:
    VerifierLogs(connscope_connect_bpf *skel, const std::vector<const ProgramSpec *> &programs, std::size_t size)
        : size_(size)
    {
        for (const auto *spec : programs) {
            std::unique_ptr<char[]> buf(new char[size]); // left uninitialized on purpose
            buf[0] = '\0';
            bpf_program__set_log_buf(program(skel, *spec), buf.get(), size);
            logs_.push_back({spec, std::move(buf)});
        }
    }

    // The program the verifier refused, or nullptr when none logged (a
    // refusal before verification: program type, attach target, map).
    const ProgramSpec *refused() const
    {
        for (const auto &l : logs_)
            if (l.buf[0])
                return l.spec;
        return nullptr;
    }

    const char *log_of(const ProgramSpec *spec) const
    {
        for (const auto &l : logs_)
            if (l.spec == spec)
                return l.buf.get();
        return "";
    }

    // Whether a log filled its buffer (the kernel then fails the load with ENOSPC).
    bool full() const
    {
        for (const auto &l : logs_)
            if (std::strlen(l.buf.get()) + 1 >= size_)
                return true;
        return false;
    }

private:
    struct Log {
        const ProgramSpec *spec;
        std::unique_ptr<char[]> buf;
    };
    std::size_t size_;
    std::vector<Log> logs_;
};

// The whole log at the most detailed level, a line each, for whoever debugs it.
void emit_log(const ProgramSpec &spec, const char *log)
{
    const char *line = log;
    while (*line) {
        const char *nl = std::strchr(line, '\n');
        std::size_t len = nl ? static_cast<std::size_t>(nl - line) : std::strlen(line);
        LogScope::emit(LogLevel::debug, std::string("verifier log of ") + spec.hook + ": " + std::string(line, len));
        line += len + (nl ? 1 : 0);
    }
}

struct Skel {
    connscope_connect_bpf *p = nullptr;
    ~Skel() { connscope_connect_bpf__destroy(p); }
};


// The kernel refuses a second program on a cgroup hook (EPERM) when the ones
// there were attached without BPF_F_ALLOW_MULTI; the query says whether so.
std::string cgroup_attach_remedy(int cgroup_fd, const bpf_program *prog, const std::string &path)
{
    __u32 flags = 0, count = 0;
    if (bpf_prog_query(cgroup_fd, bpf_program__expected_attach_type(prog), 0, &flags, nullptr, &count) ||
        count == 0 || (flags & BPF_F_ALLOW_MULTI))
        return {};
    return std::to_string(count) + " program(s) on this hook of " + path + " were attached without "
           "BPF_F_ALLOW_MULTI (flags " + std::to_string(flags) + "), which keeps any other out: detach them (bpftool "
           "cgroup show " + path + ") or use backend tracepoint";
}

// Opens the object with `programs` and loads it. Where the kernel refuses an
// optional program, loads again without it and adds what it would have seen
// to gaps; any other refusal throws, in the kernel's words where it gave any.
connscope_connect_bpf *load(const BackendDescription &backend, std::vector<const ProgramSpec *> &programs,
                            const LoadSettings &settings, std::vector<std::string> &gaps)
{
    // Enough for the log of any refusal of these programs; bigger once if not.
    std::size_t log_size = std::size_t(1) << 20;
    bool required_tried = false;
    for (;;) {
        Skel skel{open_with(programs, settings)};
        VerifierLogs logs(skel.p, programs, log_size);
        int err = -connscope_connect_bpf__load(skel.p);
        if (!err) {
            connscope_connect_bpf *out = skel.p;
            skel.p = nullptr;
            return out;
        }
        if (err == ENOSPC && logs.full() && log_size < (std::size_t(64) << 20)) {
            log_size = std::size_t(64) << 20; // the log was cut, and with it the reason
            continue;
        }
        const ProgramSpec *refused = logs.refused();
        Refusal refusal{Refusal::Step::load, err, {}};
        if (refused) {
            emit_log(*refused, logs.log_of(refused));
            refusal.kernel_says = verifier_reason(logs.log_of(refused));
        }
        // A refusal before verification names no program. Whether the required
        // ones load at all comes first: where the kernel refuses the backend
        // outright (EPERM where it has no trampolines) that is one more load,
        // not one per optional program, and the error is theirs.
        if (!refused && !required_tried) {
            required_tried = true;
            std::vector<const ProgramSpec *> required;
            for (const auto *p : programs)
                if (p->gaps_without.empty())
                    required.push_back(p);
            if (required.size() < programs.size()) {
                std::vector<std::string> unused;
                connscope_connect_bpf__destroy(load(backend, required, settings, unused)); // throws if refused
            }
        }
        // The optional program to drop: the one refused or, when the kernel
        // did not say which (a refusal before verification), the first
        // optional one, since libbpf loads in order and stops at the first
        // refusal; the loop comes back for the next if that was not it.
        std::vector<const ProgramSpec *> keep, dropped;
        for (const auto *p : programs)
            ((!p->gaps_without.empty() && dropped.empty() && (!refused || refused == p)) ? dropped : keep)
                .push_back(p);
        if (dropped.empty() || (refused && refused->gaps_without.empty())) {
            const auto hooks = refused ? std::vector<const ProgramSpec *>{refused} : programs;
            std::string remedy = refused ? verifier_remedy(refusal.kernel_says, *refused) : std::string();
            if (remedy.empty())
                remedy = memlock_remedy(refusal);
            if (remedy.empty())
                remedy = module_btf_remedy(refusal);
            if (remedy.empty())
                remedy = backend.remedy(refusal);
            fail("loading " + join_hooks(hooks), refusal, remedy);
        }
        for (const auto *p : dropped) {
            std::string why = errno_text(err);
            if (p == refused && !refusal.kernel_says.empty())
                why += ": " + refusal.kernel_says;
            for (const char *gap : p->gaps_without)
                gaps.push_back(std::string(gap) + " (" + p->hook + " did not load: " + why + ")");
        }
        programs = keep;
    }
}

} // namespace

AttachedBackend attach_backend(const BackendDescription &backend, const LoadSettings &settings)
{
    const Variant &variant = choose_variant(backend);
    std::vector<const ProgramSpec *> programs;
    for (const auto &p : variant.programs)
        if (!p.usable || p.usable())
            programs.push_back(&p);
    const std::vector<const ProgramSpec *> own = programs;
    LoadSettings with_outcomes = settings;
    with_outcomes.late_records = false;
    if (settings.outcomes) {
        for (const auto *p : outcome_programs(backend))
            programs.push_back(p);
        with_outcomes.late_records = hook_after_lsms(backend);
    } else if (settings.refused_attempts && hook_after_lsms(backend)) {
        for (const auto *p : refused_attempt_programs())
            programs.push_back(p);
        with_outcomes.late_records = true;
    }

    const bool on_cgroup = uses_cgroup(programs);
    if (on_cgroup && !settings.cgroup)
        fail("finding the cgroup v2 root", {Refusal::Step::open_cgroup, ENOENT, {}}, settings.cgroup_missing);

    std::vector<std::string> gaps;
    Skel skel{load(backend, programs, with_outcomes, gaps)};
    if (settings.before_attach)
        settings.before_attach(skel.p);

    AttachedBackend out;
    std::vector<const ProgramSpec *> unattached;
    for (const auto *spec : programs) {
        bpf_program *prog = program(skel.p, *spec);
        bpf_link *link = spec->attach == AttachKind::cgroup ? bpf_program__attach_cgroup(prog, settings.cgroup->fd)
                                                            : bpf_program__attach(prog);
        if (!link && !spec->gaps_without.empty()) {
            // Optional: the backend runs without it, and says what it misses.
            const std::string why = errno_text(errno);
            for (const char *gap : spec->gaps_without)
                gaps.push_back(std::string(gap) + " (" + spec->hook + " did not attach: " + why + ")");
            unattached.push_back(spec);
            continue;
        }
        if (!link) {
            Refusal refusal{Refusal::Step::attach, errno, {}};
            std::string remedy;
            if (spec->attach == AttachKind::cgroup && refusal.err == EPERM)
                remedy = cgroup_attach_remedy(settings.cgroup->fd, prog, settings.cgroup->name());
            if (remedy.empty())
                remedy = backend.remedy(refusal);
            fail(std::string("attaching ") + spec->hook, refusal, remedy);
        }
        // out owns it from here, also when a later one fails
        out.links.emplace_back(link, prog, spec->hook,
                               spec->attach == AttachKind::cgroup ? settings.cgroup : nullptr);
    }
    out.skel = skel.p;
    skel.p = nullptr;
    std::vector<const ProgramSpec *> hooks, outcome_hooks;
    for (const auto *p : programs)
        if (std::find(unattached.begin(), unattached.end(), p) == unattached.end())
            (std::find(own.begin(), own.end(), p) != own.end() ? hooks : outcome_hooks).push_back(p);
    out.detail = join_hooks(hooks);
    if (on_cgroup)
        out.detail += " on " + settings.cgroup->name();
    if (variant.note)
        out.detail += std::string(" (") + variant.note + ")";
    if (!outcome_hooks.empty())
        out.detail += (settings.outcomes ? "; outcomes from " : "; refused connect(2)s from ") +
                      join_hooks(outcome_hooks);
    if (!settings.outcomes && !settings.refused_attempts && hook_after_lsms(backend))
        gaps.emplace_back("connect(2)s an LSM refused before the hook (outcomes are off: Options::outcomes)");
    out.gaps = std::move(gaps);
    for (const char *gap : backend.gaps)
        out.gaps.emplace_back(gap);
    if (backend.check_running)
        backend.check_running(); // out's destructor detaches if it throws
    return out;
}

std::string backend_table_markdown()
{
    std::string out = "| Backend | Hooks | Address | Needs | Misses on every kernel |\n"
                      "|---------|-------|---------|-------|------------------------|\n";
    for (const auto &b : backend_table()) {
        std::string hooks;
        std::vector<std::string> listed; // flavours of one hook list (per kernel) are one entry
        for (const auto &v : b.variants) {
            std::string variant;
            for (const auto &p : v.programs)
                variant += (variant.empty() ? "`" : ", `") + std::string(p.hook) + "`";
            if (std::find(listed.begin(), listed.end(), variant) != listed.end())
                continue;
            listed.push_back(variant);
            hooks += (hooks.empty() ? "" : "; else ") + variant;
        }
        std::string gaps;
        for (const char *g : b.gaps)
            gaps += (gaps.empty() ? "" : "; ") + std::string(g);
        out += std::string("| `") + b.name + "` | " + hooks + " | " + b.reads + " | " + b.needs + " | " +
               (gaps.empty() ? "-" : gaps) + " |\n";
    }
    return out;
}

} // namespace connscope::detail
