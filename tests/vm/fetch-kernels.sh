#!/bin/sh
# fetch-kernels.sh CACHE_DIR [ARCH]
# Downloads the newest Debian linux-image-<series>.*-cloud-ARCH (ARCH: amd64, the
# default, or arm64) of each series the VM suite boots and extracts vmlinuz + config
# into CACHE_DIR/<series>/ (give each ARCH its own CACHE_DIR). Picks names
# dynamically so the script survives point releases. Exit 77 (meson "skip") if the
# archive is unreachable. Cached kernels are reused without touching the network.
#
# Where each series comes from (checked 2026-12-01):
#   5.10  Debian 11 bullseye: bullseye + bullseye-security (security has the newest)
#   6.1   Debian 12 bookworm: the host's own apt sources
#   6.12  the newest of the host's sources (bookworm-security carries 6.12+deb12) and
#         trixie + trixie-security (6.12+deb13, newer); bookworm-backports lags both
# Suites the host does not list are read through a private apt configuration in
# CACHE_DIR/apt/<name>/ (its own source list, lists and package cache), on the
# mirror the host's sources use: the host's apt setup is never touched. For another
# architecture than the host's, every suite is read that way (bookworm too), with
# APT::Architectures set to it, so the host needs no `dpkg --add-architecture`.
#
# BPF features seen in the config: printed on every run (CONFIG_BPF_LSM, CONFIG_LSM,
# CONFIG_KPROBES, CONFIG_DEBUG_INFO_BTF) so a future package that drops one is
# visible in the log. Debian 11's CONFIG_LSM lacks bpf although CONFIG_BPF_LSM=y.
set -eu
[ $# -eq 1 ] || [ $# -eq 2 ] || { echo "usage: $0 CACHE_DIR [amd64|arm64]" >&2; exit 2; }
cache=$1
arch=${2:-amd64}
case $arch in amd64|arm64) ;; *) echo "fetch-kernels: unknown architecture $arch (amd64, arm64)" >&2; exit 2 ;; esac
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

skip() { echo "fetch-kernels: SKIP: $*" >&2; exit 77; }
command -v apt-cache >/dev/null && command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
    skip "apt-get/apt-cache/dpkg-deb not available (not a Debian-like host)"

# series, then the apt configurations to search ("host" or a private one below);
# the newest package name over all of them wins
if [ "$arch" = "$(dpkg --print-architecture 2>/dev/null || echo amd64)" ]; then
    SERIES='5.10 bullseye
6.1 host
6.12 host trixie'
else
    SERIES='5.10 bullseye
6.1 bookworm
6.12 bookworm trixie'
fi

# suites of each private configuration: "archive" or "security", then the suite
suites() {
    case $1 in
    bullseye) printf 'archive bullseye\nsecurity bullseye-security\n' ;;
    bookworm) printf 'archive bookworm\nsecurity bookworm-security\n' ;;
    trixie) printf 'archive trixie\nsecurity trixie-security\n' ;;
    *) echo "fetch-kernels: unknown apt configuration $1" >&2; exit 2 ;;
    esac
}

# The host's Debian mirrors (its archive and security sites: Origin Debian, or a
# path ending in /debian, /debian-security), whatever format its sources are in;
# deb.debian.org when it lists none.
mirror() {
    # shellcheck disable=SC2016 # apt's own $(FIELD) syntax
    apt-get indextargets --format '$(SITE) $(RELEASE) $(ORIGIN)' 2>/dev/null | awk -v want="$1" '
        $3 != "Debian" && $1 !~ /\/debian(-security)?\/?$/ { next }
        { sec = ($2 ~ /-security$/) ? "security" : "archive" }
        sec == want && !seen++ { print $1 }' | grep . ||
        { [ "$1" = security ] && echo http://deb.debian.org/debian-security || echo http://deb.debian.org/debian; }
}

# apt CONF CMD ARGS...: run an apt command against configuration CONF
apt() {
    conf=$1; shift
    cmd=$1; shift
    if [ "$conf" = host ]; then
        "$cmd" "$@"
    else
        d=$cache/apt/$conf
        "$cmd" -o Dir::Etc::sourcelist="$d/sources.list" -o Dir::Etc::sourceparts=/nonexistent \
            -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" \
            -o APT::Architecture="$arch" -o APT::Architectures::="$arch" "$@"
    fi
}

# Refreshes CONF's package lists, once per run. The private ones are always
# refreshed before use (security suites drop superseded kernels from the pool);
# the host's only when its lists are empty or a download failed.
updated=" "
update() {
    case $updated in *" $1 "*) return 0 ;; esac
    updated="$updated$1 "
    if [ "$1" != host ]; then
        d=$cache/apt/$1
        mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
        keyring=/usr/share/keyrings/debian-archive-keyring.gpg
        suites "$1" | while read -r kind suite; do
            echo "deb [signed-by=$keyring] $(mirror "$kind") $suite main"
        done > "$d/sources.list"
    fi
    # a suite that fails (mirror down) is reported; the others still count
    apt "$1" apt-get update -qq >"$cache/apt-update-$1.log" 2>&1 ||
        echo "fetch-kernels: apt-get update ($1) reported errors: $(grep -E '^[EW]:' "$cache/apt-update-$1.log" | head -n 3 | tr '\n' ' ')" >&2
}

# package names of a series in CONF, newest first; exact "-cloud-ARCH" suffix
# excludes -dbg/-unsigned
names_in() {
    apt "$1" apt-cache search --names-only "^linux-image-$2\\..*-cloud-$arch\$" 2>/dev/null |
        awk '{print $1}' | grep -E -- "-cloud-$arch\$" | sort -V -r
}

features() {
    grep -E '^(# )?CONFIG_(BPF_LSM|LSM|KPROBES|DEBUG_INFO_BTF)[= ]' "$1" |
        sed 's/^# \(CONFIG_[A-Z_]*\) is not set/\1=n/' | tr '\n' ' '
}

# download CONF PKG DIR: fetch the .deb into DIR (apt-get download runs as _apt when root)
download() {
    (cd "$3" && apt "$1" apt-get download -qq "$2" >/dev/null 2>&1)
}

mkdir -p "$cache/apt"
while read -r series confs; do
    dir=$cache/$series
    if [ -s "$dir/vmlinuz" ] && [ -s "$dir/config" ] && [ -s "$dir/package" ]; then
        echo "fetch-kernels: $series: cached $(cat "$dir/package")"
        echo "fetch-kernels: $series: $dir/vmlinuz; $(features "$dir/config")"
        continue
    fi
    # "name conf" of every candidate over all configurations, newest first
    candidates=$(for conf in $confs; do
        [ "$conf" = host ] || update "$conf" >&2
        pkgs=$(names_in "$conf" "$series")
        if [ -z "$pkgs" ] && [ "$conf" = host ]; then
            update host >&2   # empty package lists (fresh CI container)
            pkgs=$(names_in host "$series")
        fi
        for pkg in $pkgs; do echo "$pkg $conf"; done
    done | sort -V -r -k1,1)
    [ -n "$candidates" ] || skip "no linux-image-$series.*-cloud-$arch package in the apt lists ($confs)"
    tmp=$(mktemp -d "$cache/.dl.XXXXXX")
    chmod 777 "$tmp"
    # The newest first; an archive that lists a package but no longer serves it
    # (a mirror missing the latest security upload) falls back to the next newest,
    # up to ten, and says so.
    best='' bestconf='' tried=''
    for candidate in $(echo "$candidates" | head -n 10 | tr ' ' ':'); do
        pkg=${candidate%%:*} conf=${candidate#*:}
        if download "$conf" "$pkg" "$tmp" ||
            { [ "$conf" = host ] && [ -z "$tried" ] && update host && download "$conf" "$pkg" "$tmp"; }; then
            best=$pkg bestconf=$conf
            break
        fi
        # stale lists name a package the pool no longer has (host lists refreshed once above)
        tried="$tried $pkg ($conf)"
    done
    [ -z "$tried" ] || echo "fetch-kernels: $series: apt-get download failed for$tried${best:+; using $best}" >&2
    [ -n "$best" ] || { rm -rf "$tmp"; skip "apt-get download failed for every candidate of $series:$tried (archive unreachable?)"; }
    dpkg-deb -x "$tmp"/*.deb "$tmp/root"
    mkdir -p "$dir"
    cp "$tmp"/root/boot/vmlinuz-* "$dir/vmlinuz"
    cp "$tmp"/root/boot/config-* "$dir/config"
    echo "$best $(dpkg-deb -f "$tmp"/*.deb Version) $bestconf" > "$dir/package"
    rm -rf "$tmp"
    echo "fetch-kernels: $series: downloaded $(cat "$dir/package")"
    echo "fetch-kernels: $series: $dir/vmlinuz; $(features "$dir/config")"
done <<EOF
$SERIES
EOF
