// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The kernel backends as one table of descriptions (backend_table.cpp): which
// programs of the connect object each one loads, how they attach, which
// variant fits the running kernel, what it cannot see, and what to tell the
// user when the kernel says no. Probing, attaching, backend_names() and the
// docs' backend table all come from it, so a new backend or a per-kernel
// variant is one entry plus its .bpf.c.
#pragma once

#include "cgroup_root.hpp"
#include "links.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

struct bpf_link;
struct connscope_connect_bpf;

namespace connscope::detail {

// What the loaded programs are told before load.
struct LoadSettings {
    std::size_t ring_size = 0;
    std::uint64_t wakeup_watermark = 0;
    // Where cgroup programs attach (cgroup_root.hpp); null: nowhere, and why.
    std::shared_ptr<const CgroupScope> cgroup;
    std::string cgroup_missing;
    bool outcomes = true; // follow each connect to its outcome (outcome.bpf.c)
    // Without outcomes: still report a connect(2) an LSM refused before a
    // hook that runs after the LSMs (only connect's exit, no handshakes).
    bool refused_attempts = true;
    bool late_records = false; // set by attach_backend: hook_after_lsms()
    // Runs after load and before attach (the filters), so no event escapes it.
    std::function<void(connscope_connect_bpf *)> before_attach;
};

enum class AttachKind {
    tracing, // bpf_program__attach: lsm, fentry, kprobe, tracepoints
    cgroup,  // bpf_program__attach_cgroup on the cgroup v2 root
};

struct ProgramSpec {
    const char *program; // its name in the connect object (handle_*)
    const char *hook;    // as users know it: "lsm/socket_connect"
    AttachKind attach = AttachKind::tracing;
    // Set before load where libbpf cannot tell it from the section name; -1: leave.
    int expected_attach_type = -1;
    // Non-empty: the program is optional. Where the kernel refuses to load it,
    // the backend runs without it and reports these gaps.
    std::vector<const char *> gaps_without = {};
    // Whether to load it at all on this host; nullptr: always. For programs
    // with alternatives (one tracepoint under two names): the one left out
    // costs nothing and reports no gap.
    bool (*usable)() = nullptr;
};

// A step the kernel (or libbpf on its behalf) refused, for a remedy to read.
struct Refusal {
    enum class Step { open_cgroup, load, attach } step;
    int err;                  // positive errno
    std::string kernel_says;  // the verifier's reason line; "" when it logged none
};

struct Variant {
    // Whether this variant fits the running host; nullptr: always.
    bool (*usable)() = nullptr;
    // Said in BackendInfo::reason when this variant is chosen; may be nullptr.
    const char *note = nullptr;
    std::vector<ProgramSpec> programs;
};

struct BackendDescription {
    const char *name;
    const char *reads; // for the docs: whose copy of the address it reads, and when
    const char *needs; // for the docs: what the kernel must offer
    std::vector<Variant> variants; // the first usable one is loaded
    // What to do about a refusal ("" when nothing fits). Called only when the
    // verifier's own words did not already say (unknown helpers, kfuncs, BTF
    // types are explained in backend.cpp for every backend).
    std::string (*remedy)(const Refusal &refusal);
    // After attach: throws BackendFailure when the programs are attached but
    // would never run (BPF LSM not active); nullptr: nothing to check.
    void (*check_running)() = nullptr;
    std::vector<const char *> gaps = {}; // what it misses on every kernel
};

// Every backend, in auto's preference order.
const std::vector<BackendDescription> &backend_table();

// The programs that follow each connect of this backend to its outcome
// (bpf/outcome.bpf.c), all optional: loaded with it when outcomes are on.
std::vector<const ProgramSpec *> outcome_programs(const BackendDescription &backend);

// Without outcomes, what reports the connect(2)s an LSM refused before the
// backend's hook (when hook_after_lsms()): the exit of connect alone.
std::vector<const ProgramSpec *> refused_attempt_programs();

// Every program outcome_programs() can choose from.
const std::vector<ProgramSpec> &outcome_program_table();

// Whether the backend's hook runs only after every LSM allowed the connect,
// so that the outcome programs report the refused ones (late records).
bool hook_after_lsms(const BackendDescription &backend);

// The table's entry of that name, or nullptr.
const BackendDescription *find_backend(const std::string &name);

// One backend's programs, loaded and attached. Owns the skeleton and links.
class AttachedBackend {
public:
    AttachedBackend() = default;
    AttachedBackend(AttachedBackend &&other) noexcept;
    AttachedBackend &operator=(AttachedBackend &&other) noexcept;
    ~AttachedBackend();

    connscope_connect_bpf *skel = nullptr;
    OwnedLinks links;
    std::vector<std::string> gaps; // what this backend misses on this kernel
    std::string detail;            // which hooks it uses, for BackendInfo::reason

private:
    void release() noexcept;
};

// Why a backend did not come up: the step, the errno and its meaning, the remedy.
class BackendFailure : public std::runtime_error {
public:
    BackendFailure(int err, const std::string &reason) : std::runtime_error(reason), err(err) {}
    int err;
};

// Loads and attaches one backend for real (probing is doing it).
// Throws BackendFailure with a reason a user can act on.
AttachedBackend attach_backend(const BackendDescription &backend, const LoadSettings &settings);

// The line of a verifier log that says why it refused ("invalid func
// unknown#158"): the last that is not an instruction, a register state or the
// statistics; "" when there is none.
std::string verifier_reason(const char *log);

// The docs' backend table (docs/guide.md), in Markdown, from backend_table().
std::string backend_table_markdown();

} // namespace connscope::detail
