#!/bin/sh
# Installs everything connscope needs to build, test and run on Debian 12.
set -eu
if [ "$(id -u)" != 0 ]; then
  echo "install-deps.sh: run as root (it uses apt-get)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  meson ninja-build pkg-config g++ clang llvm bpftool \
  libbpf-dev libelf-dev zlib1g-dev catch2 doxygen \
  python3 iproute2 dnsmasq-base liburing-dev \
  qemu-system-x86 busybox-static cpio ca-certificates \
  libclang-rt-14-dev abigail-tools systemd >/dev/null
