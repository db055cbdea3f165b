#!/bin/sh
# fetch-userland.sh CACHE_DIR ARCH
# The VM's own programs for a guest architecture that is not the host's (arm64):
# busybox-static, dnsmasq-base, curl and the libraries of the dynamically linked
# benchmarks (libbpf1, libelf1, zlib1g, libstdc++6), with every package they come
# from, downloaded from Debian 12 (bookworm) for ARCH and unpacked into
# CACHE_DIR/userland/ (a root tree make-initramfs.sh copies from, with
# CONNSCOPE_VM_ROOT). Nothing is installed on the host: the packages are read
# through fetch-kernels.sh's private apt configuration CACHE_DIR/apt/bookworm
# (run fetch-kernels.sh CACHE_DIR ARCH first), and the host's dpkg state is never
# touched. Reused without network once unpacked. Exit 77 when the packages
# cannot be had.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 CACHE_DIR ARCH" >&2; exit 2; }
cache=$(cd "$1" && pwd)
arch=$2
root=$cache/userland
skip() { echo "fetch-userland: SKIP: $*" >&2; exit 77; }

if [ -s "$root/.complete" ]; then
    echo "fetch-userland: cached $(cat "$root/.complete")"
    exit 0
fi
d=$cache/apt/bookworm
[ -s "$d/sources.list" ] || skip "no private apt configuration in $d (fetch-kernels.sh $cache $arch makes it)"
apt() {
    cmd=$1; shift
    "$cmd" -o Dir::Etc::sourcelist="$d/sources.list" -o Dir::Etc::sourceparts=/nonexistent \
        -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" \
        -o APT::Architecture="$arch" -o APT::Architectures::="$arch" "$@"
}

# the shell and tools, the DNS server and client; the libraries the dynamic
# benchmarks need besides libconnscope (run-vm.py --bench)
want="busybox-static dnsmasq-base curl libbpf1 libelf1 zlib1g libstdc++6"
# The packages and what they depend on, recursively (the real ones: apt-cache
# prints virtual ones in <>, and alternatives both, which costs a few extra).
pkgs=$(apt apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances $want 2>/dev/null | grep -E '^[a-z0-9]' | sort -u)
[ -n "$pkgs" ] || skip "apt-cache depends $want ($arch) found nothing in $d"
tmp=$(mktemp -d "$cache/.userland.XXXXXX")
chmod 777 "$tmp"
# apt-get download runs as _apt when root. All in one call (about 80 packages);
# if that fails, one call per package, so an unavailable one costs only itself.
failed=""
# shellcheck disable=SC2086 # word splitting wanted
if ! (cd "$tmp" && apt apt-get download -qq $pkgs >/dev/null 2>&1); then
    for p in $pkgs; do
        ls "$tmp"/"${p}"_*.deb >/dev/null 2>&1 ||
            (cd "$tmp" && apt apt-get download -qq "$p" >/dev/null 2>&1) || failed="$failed $p"
    done
fi
for p in busybox-static dnsmasq-base curl; do
    ls "$tmp"/"${p}"_*.deb >/dev/null 2>&1 || { rm -rf "$tmp"; skip "apt-get download $p ($arch) failed"; }
done
rm -rf "$root"
mkdir -p "$root"
for deb in "$tmp"/*.deb; do
    dpkg-deb -x "$deb" "$root"
done
n=$(ls "$tmp"/*.deb | wc -l)
rm -rf "$tmp"
echo "$arch: $want and $n packages in all from bookworm${failed:+ (not downloaded:$failed)}" > "$root/.complete"
echo "fetch-userland: $(cat "$root/.complete")"
