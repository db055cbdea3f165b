#!/bin/sh
# make-initramfs.sh OUT.cpio.gz BINARY...
# Builds a small initramfs: busybox-static, the given binaries (in /usr/local/bin),
# the host's dnsmasq and curl (a real DNS server and a real glibc client), and an
# /init that mounts what BPF programs need and runs the jobs in /connscope/jobs/
# (one shell script each, named NN-NAME, sorted). run-vm.py appends the jobs as a
# second cpio archive at boot time; the kernel unpacks concatenated archives in
# order, so this image is reusable across boots and the commands are not limited by
# the 2 KiB kernel command line or its quoting.
# Each job's output is framed on the console by
#   @@CONNSCOPE-BEGIN NAME@@ ... @@CONNSCOPE-END NAME rc=N@@
# then the VM powers off (QEMU runs with -no-reboot, the kernel with panic=-1,
# so even a dying /init ends the VM instead of hanging it).
#
# Dynamically linked programs (dnsmasq, curl, or a BINARY) come with every library
# `ldd` names and the dynamic loader, at their host paths. The image keeps the
# non-merged layout (/lib, /usr/lib are directories), which ld.so searches as is.
# Static binaries that call getaddrinfo need no NSS module with glibc >= 2.34 (files
# and dns are built into libc.a); libnss_files/libnss_dns/libresolv are copied
# anyway when the host has them, for older glibc.
#
# A guest of another architecture (arm64): CONNSCOPE_VM_ROOT names a tree of that
# architecture's Debian packages (fetch-userland.sh); busybox, dnsmasq and curl
# come from there instead of the host, and a dynamic program's libraries are
# found by their ELF DT_NEEDED entries in that tree (ldd cannot run them).
set -eu
[ $# -ge 1 ] || { echo "usage: $0 OUT.cpio.gz [BINARY...]" >&2; exit 2; }
out=$1; shift

install_pkg() {   # install_pkg PACKAGE WHY
    echo "make-initramfs: installing $1 ($2)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null 2>&1
}

vmroot=${CONNSCOPE_VM_ROOT:-}
bb=/bin/busybox
is_static() { ! readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'; }
if [ -n "$vmroot" ]; then
    bb=$vmroot/bin/busybox
    [ -x "$bb" ] && is_static "$bb" ||
        { echo "make-initramfs: SKIP: no static busybox in $vmroot (fetch-userland.sh)" >&2; exit 77; }
    for tool in /usr/sbin/dnsmasq /usr/bin/curl; do
        [ -x "$vmroot$tool" ] || echo "make-initramfs: WARNING: no $tool in $vmroot; the DNS tests or trace-dns will fail" >&2
    done
elif ! [ -x $bb ] || ! is_static $bb; then
    # the dynamic "busybox" package cannot run without a libc in the image
    install_pkg busybox-static "the VM's shell and tools" ||
        { echo "make-initramfs: SKIP: busybox-static unavailable" >&2; exit 77; }
fi
# Real DNS server and client for the [dns] tests and the trace-dns job. Without
# them the image is still built: the [dns] cases then say they were skipped and
# run-vm.py counts that as a failure.
if [ -z "$vmroot" ]; then
    [ -x /usr/sbin/dnsmasq ] || install_pkg dnsmasq-base "the VM's DNS server" ||
        echo "make-initramfs: WARNING: no /usr/sbin/dnsmasq (dnsmasq-base); DNS tests will not run" >&2
    [ -x /usr/bin/curl ] || install_pkg curl "the VM's DNS client" ||
        echo "make-initramfs: WARNING: no /usr/bin/curl; the trace-dns job will fail" >&2
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/bin "$root"/sbin "$root"/usr/bin "$root"/usr/sbin "$root"/usr/local/bin \
    "$root"/proc "$root"/sys "$root"/dev "$root"/tmp "$root"/root "$root"/etc \
    "$root"/var/run "$root"/var/lib/misc "$root"/connscope/jobs
cp "$bb" "$root"/bin/busybox
if [ -n "$vmroot" ]; then
    # a guest busybox does not run here: /init makes its links at boot
    ln -sf /bin/busybox "$root"/bin/sh
else
    for applet in $("$root"/bin/busybox --list-full); do
        [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$root/$applet"
    done
fi

# put HOSTFILE IMAGEPATH: a regular file (symlinks resolved), replacing any
# busybox link there (cp onto a link would overwrite busybox itself)
put() {
    mkdir -p "$root${2%/*}"
    rm -f "$root$2"
    cp -L "$1" "$root$2"
}

# lib_in_root NAME: "HOSTPATH IMAGEPATH" of the library NAME, from the guest tree
# or from a directory in CONNSCOPE_VM_LIBS (a cross build's own libraries, put in
# the image's /usr/lib/TRIPLET, which the loader searches without a cache)
lib_in_root() {
    for dir in /lib/$multiarch /usr/lib/$multiarch /lib /usr/lib; do
        [ -e "$vmroot$dir/$1" ] && { echo "$vmroot$dir/$1 $dir/$1"; return 0; }
    done
    for dir in $(echo "${CONNSCOPE_VM_LIBS:-}" | tr ':' ' '); do
        [ -e "$dir/$1" ] && { echo "$dir/$1 /usr/lib/$multiarch/$1"; return 0; }
    done
    return 1
}

# with_root_libs FILE: with_libs for a guest-tree program: its interpreter and
# its DT_NEEDED libraries, recursively, from CONNSCOPE_VM_ROOT
with_root_libs() {
    interp=$(readelf -l "$1" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
    [ -z "$interp" ] || [ -e "$root$interp" ] || put "$vmroot$interp" "$interp"
    for need in $(readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        found=$(lib_in_root "$need") ||
            { echo "make-initramfs: $1 needs $need, not in $vmroot${CONNSCOPE_VM_LIBS:+ or $CONNSCOPE_VM_LIBS}" >&2; exit 1; }
        lib=${found#* }
        [ -e "$root$lib" ] && continue
        put "${found% *}" "$lib"
        with_root_libs "${found% *}"
    done
}

# with_libs FILE: the libraries and the loader a dynamic FILE needs, at host paths
with_libs() {
    is_static "$1" && return 0
    if [ -n "$vmroot" ]; then
        with_root_libs "$1"
        return 0
    fi
    ldd "$1" >"$root/.ldd" 2>&1 || { cat "$root/.ldd" >&2; echo "make-initramfs: ldd $1 failed" >&2; exit 1; }
    if grep -q 'not found' "$root/.ldd"; then
        grep 'not found' "$root/.ldd" >&2
        echo "make-initramfs: $1 needs libraries the host lacks" >&2
        exit 1
    fi
    # "libx.so => /path (addr)" and "/lib64/ld-linux-x86-64.so.2 (addr)"; not the vdso
    for lib in $(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' "$root/.ldd"); do
        [ -e "$root$lib" ] || put "$lib" "$lib"
    done
    rm -f "$root/.ldd"
}

# the guest's multiarch triplet: the tree's, else the host compiler's
if [ -n "$vmroot" ]; then
    multiarch=$(cd "$vmroot/lib" && ls -d *-linux-gnu* 2>/dev/null | head -n 1)
else
    multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
fi

dynamic=""
for b in "$@"; do
    put "$b" "/usr/local/bin/${b##*/}"
    is_static "$b" || dynamic="$dynamic ${b##*/}"
    with_libs "$b"
done
host_tools=""
for tool in /usr/sbin/dnsmasq /usr/bin/curl; do
    [ -x "$vmroot$tool" ] || continue
    put "$vmroot$tool" "$tool"
    with_libs "$vmroot$tool"
    host_tools="$host_tools ${tool##*/}"
done
# glibc < 2.34 keeps files/dns in these modules (>= 2.34: small stubs)
for lib in libnss_files.so.2 libnss_dns.so.2 libresolv.so.2; do
    for d in /lib/$multiarch /usr/lib/$multiarch; do
        [ -e "$root$d/$lib" ] && break      # already there (a program needs it)
        [ -e "$vmroot$d/$lib" ] && { put "$vmroot$d/$lib" "$d/$lib"; break; }
    done
done

# Users: root; nobody/nogroup (65534) as on any Debian host; dip, dnsmasq's
# default group. The tests drop to numeric ids (1234/4321) that need no entry.
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root"/etc/passwd
printf 'root:x:0:\ndip:x:30:\nnogroup:x:65534:\n' > "$root"/etc/group
printf '127.0.0.1 localhost\n::1 localhost\n' > "$root"/etc/hosts
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' \
    > "$root"/etc/nsswitch.conf
# No resolver runs at boot; jobs start dnsmasq and bind-mount their own
# resolv.conf (as the [dns] tests do) or use this one.
printf 'nameserver 127.0.0.153\noptions timeout:2 attempts:2\n' > "$root"/etc/resolv.conf
printf 'tcp 6 TCP\nudp 17 UDP\n' > "$root"/etc/protocols
printf 'domain 53/tcp\ndomain 53/udp\nhttp 80/tcp\n' > "$root"/etc/services

cat > "$root"/init <<'INIT'
#!/bin/sh
export PATH=/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
# a guest-architecture image has only /bin/sh: the other applets' links now
# (never over the real dnsmasq and curl)
[ -e /bin/mount ] || /bin/busybox --install -s
mnt() { mkdir -p "$3" && mount -t "$1" "$2" "$3" || echo "@@CONNSCOPE-WARN cannot mount $1 on $3@@"; }
mnt proc proc /proc
mnt sysfs sysfs /sys
mnt devtmpfs devtmpfs /dev
mnt tmpfs tmpfs /tmp
# connscope.cgroup=v1 on the kernel command line: a cgroup v1-only host, as
# before the unified hierarchy was mounted by default: v1 controllers (and a
# named hierarchy, as systemd's) under a tmpfs, and no cgroup2 anywhere.
if grep -q 'connscope.cgroup=v1' /proc/cmdline; then
    mnt tmpfs cgroup /sys/fs/cgroup
    for c in cpu,cpuacct pids memory none,name=systemd; do
        d=/sys/fs/cgroup/${c#none,name=}
        mkdir -p "$d" && mount -t cgroup -o "$c" cgroup "$d" 2>/dev/null ||
            { rmdir "$d"; echo "@@CONNSCOPE-WARN cannot mount cgroup v1 $c@@"; }
    done
else
    mnt cgroup2 cgroup2 /sys/fs/cgroup
fi
mnt bpf bpffs /sys/fs/bpf
mnt tracefs tracefs /sys/kernel/tracing
mnt debugfs debugfs /sys/kernel/debug
mnt securityfs securityfs /sys/kernel/security
ip link set lo up
# ::1 normally appears with "up"; add it explicitly in case it did not
ip -6 addr show dev lo | grep -q '::1/' || ip -6 addr add ::1/128 dev lo
t=$(cat /connscope/timeout 2>/dev/null || echo 300)
echo "@@CONNSCOPE-BOOTED $(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime) lsm=$(cat /sys/kernel/security/lsm 2>/dev/null)@@"
for f in /connscope/jobs/*; do
    [ -f "$f" ] || continue
    n=${f##*/}; n=${n#*-}
    echo "@@CONNSCOPE-BEGIN $n@@"
    s=$(cut -d' ' -f1 /proc/uptime)
    # a fresh shell per job; KILL on timeout so one hung job cannot eat the boot
    (cd /tmp && exec timeout -s KILL "$t" sh "$f") </dev/null 2>&1
    rc=$?
    echo
    echo "@@CONNSCOPE-END $n rc=$rc start=$s end=$(cut -d' ' -f1 /proc/uptime)@@"
done
echo "@@CONNSCOPE-DONE uptime=$(cut -d' ' -f1 /proc/uptime)@@"
sync
poweroff -f
echo o > /proc/sysrq-trigger
INIT
chmod 755 "$root"/init

cpio=cpio; command -v cpio >/dev/null || cpio="$root/bin/busybox cpio"
(cd "$root" && find . | LC_ALL=C sort | $cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 > "$out.tmp"
mv "$out.tmp" "$out"
echo "make-initramfs: $out ($(du -k "$out" | cut -f1) KiB) with: busybox $*${host_tools:+; host tools:$host_tools}${dynamic:+; dynamic:$dynamic}"
