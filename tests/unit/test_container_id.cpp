// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Container ids from cgroup paths, as each runtime and cgroup driver lays them out.
#include <catch2/catch.hpp>

#include "process/container_id.hpp"

#include <string>

using connscope::detail::container_id_of_cgroup_path;

namespace {

// Two distinct valid ids, so a test tells which one was taken.
const std::string id_a = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string id_b = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
const std::string pod = "pod5f2b9d4e-7c1a-4e8b-9f3d-2a6c8e0b1d47";
const std::string pod_systemd = "pod5f2b9d4e_7c1a_4e8b_9f3d_2a6c8e0b1d47";

std::string of(const std::string &path) { return container_id_of_cgroup_path(path); }

} // namespace

TEST_CASE("Docker: systemd and cgroupfs drivers", "[container]")
{
    CHECK(of("/system.slice/docker-" + id_a + ".scope") == id_a);
    CHECK(of("/docker/" + id_a) == id_a);
    // Docker in Docker: the inner container.
    CHECK(of("/docker/" + id_a + "/docker/" + id_b) == id_b);
    CHECK(of("/system.slice/docker-" + id_a + ".scope/docker/" + id_b) == id_b);
}

TEST_CASE("containerd CRI and Kubernetes pods", "[container]")
{
    CHECK(of("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-" + pod_systemd +
             ".slice/cri-containerd-" + id_a + ".scope") == id_a);
    CHECK(of("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-" + pod_systemd +
             ".slice/cri-containerd-" + id_a + ".scope") == id_a);
    CHECK(of("/kubepods.slice/kubepods-" + pod_systemd + ".slice/cri-containerd-" + id_a + ".scope") == id_a);
    // cgroupfs: the bare id below the pod's cgroup, for each QoS class.
    CHECK(of("/kubepods/burstable/" + pod + "/" + id_a) == id_a);
    CHECK(of("/kubepods/besteffort/" + pod + "/" + id_a) == id_a);
    CHECK(of("/kubepods/" + pod + "/" + id_a) == id_a);
    // Docker as the pod's runtime (systemd driver).
    CHECK(of("/kubepods.slice/kubepods-" + pod_systemd + ".slice/docker-" + id_a + ".scope") == id_a);
    // The pod's own cgroup is no container.
    CHECK(of("/kubepods/burstable/" + pod) == "");
    CHECK(of("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-" + pod_systemd + ".slice") == "");
}

TEST_CASE("CRI-O: the container, not its monitor", "[container]")
{
    const std::string slice = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-" + pod_systemd + ".slice/";
    CHECK(of(slice + "crio-" + id_a + ".scope") == id_a);
    CHECK(of(slice + "crio-conmon-" + id_a + ".scope") == "");
    CHECK(of("/kubepods/burstable/" + pod + "/crio-" + id_a) == id_a);
    CHECK(of("/kubepods/burstable/" + pod + "/crio-conmon-" + id_a) == "");
    // Its own cgroup below the container's scope still belongs to it.
    CHECK(of(slice + "crio-" + id_a + ".scope/container") == id_a);
}

TEST_CASE("Podman: system, rootless and cgroupfs; conmon is no container", "[container]")
{
    CHECK(of("/machine.slice/libpod-" + id_a + ".scope") == id_a);
    CHECK(of("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id_a + ".scope") == id_a);
    CHECK(of("/machine.slice/libpod-conmon-" + id_a + ".scope") == "");
    CHECK(of("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-conmon-" + id_a + ".scope") == "");
    CHECK(of("/libpod_parent/libpod-" + id_a) == id_a);
    CHECK(of("/libpod_parent/libpod-conmon-" + id_a) == "");
    CHECK(of("/machine.slice/libpod-" + id_a + ".scope/container") == id_a);
}

TEST_CASE("a cgroup below a container's is that container's", "[container]")
{
    CHECK(of("/system.slice/docker-" + id_a + ".scope/init.scope") == id_a);
    CHECK(of("/system.slice/docker-" + id_a + ".scope/system.slice/nginx.service") == id_a);
    CHECK(of("/docker/" + id_a + "/worker/sub") == id_a);
    // A 64-hex name a container gave its own cgroup is not another container.
    CHECK(of("/system.slice/docker-" + id_a + ".scope/" + id_b) == id_a);
    // Trailing and doubled slashes change nothing.
    CHECK(of("//system.slice//docker-" + id_a + ".scope/") == id_a);
    // A monitor started inside a container is a process of that container.
    CHECK(of("/system.slice/docker-" + id_a + ".scope/libpod-conmon-" + id_b + ".scope") == id_a);
}

TEST_CASE("what is not a container id", "[container]")
{
    CHECK(of("") == "");
    CHECK(of("/") == "");
    CHECK(of("/user.slice/user-1000.slice/session-3.scope") == "");
    CHECK(of("/system.slice/sshd.service") == "");
    CHECK(of("/init.scope") == "");
    // Not hex, the wrong length, upper case.
    const std::string not_hex = id_a.substr(0, 63) + "g";
    CHECK(of("/system.slice/docker-" + not_hex + ".scope") == "");
    CHECK(of("/docker/" + not_hex) == "");
    CHECK(of("/system.slice/docker-" + id_a.substr(0, 63) + ".scope") == "");
    CHECK(of("/system.slice/docker-" + id_a + "0.scope") == "");
    CHECK(of("/docker/" + id_a.substr(0, 63)) == "");
    CHECK(of("/docker/" + id_a + "0") == "");
    std::string upper = id_a;
    for (char &c : upper)
        if (c >= 'a' && c <= 'f')
            c = static_cast<char>(c - 'a' + 'A');
    CHECK(of("/system.slice/docker-" + upper + ".scope") == "");
    CHECK(of("/docker/" + upper) == "");
    // Another unit type, another suffix, or a prefix no runtime uses.
    CHECK(of("/system.slice/docker-" + id_a + ".mount") == "");
    CHECK(of("/system.slice/docker-" + id_a + ".service") == "");
    CHECK(of("/system.slice/docker-" + id_a) == "");
    CHECK(of("/system.slice/cri-containerd-" + id_a) == "");
    CHECK(of("/system.slice/foo-" + id_a + ".scope") == "");
    CHECK(of("/system.slice/docker-" + id_a + ".scope.d") == "");
    // A bare id whose parents name no runtime.
    CHECK(of("/" + id_a) == "");
    CHECK(of("/system.slice/" + id_a) == "");
    CHECK(of("/kubepods/burstable/" + id_a) == "");
    CHECK(of("/kubepods/pod/" + id_a) == "");
    CHECK(of("/other/" + pod + "/" + id_a) == "");
    CHECK(of("/dockers/" + id_a) == "");
}
