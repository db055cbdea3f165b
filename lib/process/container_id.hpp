// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// The container a cgroup belongs to, told from the cgroup's path alone (no
// system calls: the Session resolves the path, kernel/container_ids.cpp).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace connscope::detail {

// Length of a container id in text: 64 lowercase hex digits (a SHA-256).
constexpr std::size_t container_id_length = 64;

// The container id in a cgroup v2 path ("/system.slice/docker-<id>.scope"),
// or "" when the path names no container. Recognised, with the systemd
// driver and with cgroupfs, also nested below a pod slice or another
// container (the innermost one wins):
//   docker-<id>.scope               Docker (systemd)
//   docker/<id>                     Docker (cgroupfs)
//   cri-containerd-<id>.scope       containerd CRI (systemd)
//   kubepods[/burstable|/besteffort]/pod<uid>/<id>   any CRI runtime (cgroupfs)
//   crio-<id>.scope, crio-<id>      CRI-O (systemd, cgroupfs)
//   libpod-<id>.scope, libpod-<id>  Podman (systemd, cgroupfs)
// A cgroup below a container's (init.scope, one the container made) is that
// container's. The runtimes' monitors (crio-conmon-<id>, libpod-conmon-<id>)
// are not containers. Only 64 lowercase hex digits count as an id.
std::string container_id_of_cgroup_path(std::string_view path);

} // namespace connscope::detail
