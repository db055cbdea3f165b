// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The kernel backends: which programs of the connect object each one loads,
// how it attaches them, and what to tell the user when the kernel says no.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
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
    std::optional<std::string> cgroup2_path; // the cgroup v2 root, when mounted
    // Runs after load and before attach (the filters), so no event escapes it.
    std::function<void(connscope_connect_bpf *)> before_attach;
};

// One backend's programs, loaded and attached. Owns the skeleton and links.
class AttachedBackend {
public:
    AttachedBackend() = default;
    AttachedBackend(AttachedBackend &&other) noexcept;
    AttachedBackend &operator=(AttachedBackend &&other) noexcept;
    ~AttachedBackend();

    connscope_connect_bpf *skel = nullptr;
    std::vector<bpf_link *> links;
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
AttachedBackend attach_backend(const std::string &name, const LoadSettings &settings);

} // namespace connscope::detail
