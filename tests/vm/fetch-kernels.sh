#!/bin/sh
# fetch-kernels.sh CACHE_DIR
# Downloads the newest Debian linux-image-6.1.*-cloud-amd64 and 6.12.*-cloud-amd64
# and extracts vmlinuz + config into CACHE_DIR/<series>/. Picks names dynamically so
# the script survives point releases. Exit 77 (meson "skip") if the archive is
# unreachable. Cached kernels are reused without touching the network.
#
# BPF features seen in the config (checked 2026-11 on 6.1.0-56 and 6.12.117):
# the script prints them on every run (CONFIG_BPF_LSM, CONFIG_LSM, CONFIG_KPROBES,
# CONFIG_DEBUG_INFO_BTF) so a future package that drops one is visible in the log.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 CACHE_DIR" >&2; exit 2; }
cache=$1
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

skip() { echo "fetch-kernels: SKIP: $*" >&2; exit 77; }
command -v apt-cache >/dev/null && command -v dpkg-deb >/dev/null ||
    skip "apt-cache/dpkg-deb not available (not a Debian-like host)"

# newest package name of a series; exact "-cloud-amd64" suffix excludes -dbg/-unsigned
newest() {
    apt-cache search --names-only "^linux-image-$1\\..*-cloud-amd64\$" 2>/dev/null |
        awk '{print $1}' | grep -E -- "-cloud-amd64\$" | sort -V | tail -n 1
}

features() {
    grep -E '^(# )?CONFIG_(BPF_LSM|LSM|KPROBES|DEBUG_INFO_BTF)[= ]' "$1" |
        sed 's/^# \(CONFIG_[A-Z_]*\) is not set/\1=n/' | tr '\n' ' '
}

updated=no
for series in 6.1 6.12; do
    dir=$cache/$series
    if [ -s "$dir/vmlinuz" ] && [ -s "$dir/package" ]; then
        echo "fetch-kernels: $series: cached $(cat "$dir/package")"
    else
        pkg=$(newest "$series")
        if [ -z "$pkg" ] && [ $updated = no ]; then
            # empty package lists (fresh CI container): refresh once
            apt-get update -qq >/dev/null 2>&1 || skip "apt-get update failed (archive unreachable?)"
            updated=yes
            pkg=$(newest "$series")
        fi
        [ -n "$pkg" ] || skip "no linux-image-$series.*-cloud-amd64 package in the apt lists"
        tmp=$(mktemp -d "$cache/.dl.XXXXXX")
        # apt-get download runs as _apt when root; give it a writable dir
        chmod 777 "$tmp"
        (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null 2>&1) ||
            { rm -rf "$tmp"; skip "apt-get download $pkg failed (archive unreachable?)"; }
        dpkg-deb -x "$tmp"/*.deb "$tmp/root"
        mkdir -p "$dir"
        cp "$tmp"/root/boot/vmlinuz-* "$dir/vmlinuz"
        cp "$tmp"/root/boot/config-* "$dir/config"
        echo "$pkg $(dpkg-deb -f "$tmp"/*.deb Version)" > "$dir/package"
        rm -rf "$tmp"
        echo "fetch-kernels: $series: downloaded $(cat "$dir/package")"
    fi
    echo "fetch-kernels: $series: $dir/vmlinuz; $(features "$dir/config")"
done
