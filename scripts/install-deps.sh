#!/bin/sh
# Installs everything connscope needs to build, test and run on Debian 12,
# and the arm64 cross build and VMs (cross/aarch64-linux-gnu.ini, suite vm-arm64).
set -eu
if [ "$(id -u)" != 0 ]; then
  echo "install-deps.sh: run as root (it uses apt-get)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# arm64 libraries next to the host's (multiarch), for the cross build
case " $(dpkg --print-foreign-architectures | tr '\n' ' ') " in
  *" arm64 "*) ;;
  *) dpkg --add-architecture arm64 ;;
esac
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  meson ninja-build pkg-config g++ clang llvm bpftool \
  libbpf-dev libelf-dev zlib1g-dev catch2 doxygen \
  python3 iproute2 dnsmasq-base liburing-dev \
  qemu-system-x86 busybox-static cpio ca-certificates \
  libclang-rt-14-dev abigail-tools systemd \
  g++-aarch64-linux-gnu qemu-system-arm \
  libbpf-dev:arm64 libelf-dev:arm64 zlib1g-dev:arm64 liburing-dev:arm64 >/dev/null
