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
set -eu
[ $# -ge 1 ] || { echo "usage: $0 OUT.cpio.gz [BINARY...]" >&2; exit 2; }
out=$1; shift

install_pkg() {   # install_pkg PACKAGE WHY
    echo "make-initramfs: installing $1 ($2)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null 2>&1
}

bb=/bin/busybox
is_static() { ! readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'; }
if ! [ -x $bb ] || ! is_static $bb; then
    # the dynamic "busybox" package cannot run without a libc in the image
    install_pkg busybox-static "the VM's shell and tools" ||
        { echo "make-initramfs: SKIP: busybox-static unavailable" >&2; exit 77; }
fi
# Real DNS server and client for the [dns] tests and the trace-dns job. Without
# them the image is still built: the [dns] cases then say they were skipped and
# run-vm.py counts that as a failure.
[ -x /usr/sbin/dnsmasq ] || install_pkg dnsmasq-base "the VM's DNS server" ||
    echo "make-initramfs: WARNING: no /usr/sbin/dnsmasq (dnsmasq-base); DNS tests will not run" >&2
[ -x /usr/bin/curl ] || install_pkg curl "the VM's DNS client" ||
    echo "make-initramfs: WARNING: no /usr/bin/curl; the trace-dns job will fail" >&2

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/bin "$root"/sbin "$root"/usr/bin "$root"/usr/sbin "$root"/usr/local/bin \
    "$root"/proc "$root"/sys "$root"/dev "$root"/tmp "$root"/root "$root"/etc \
    "$root"/var/run "$root"/var/lib/misc "$root"/connscope/jobs
cp $bb "$root"/bin/busybox
for applet in $("$root"/bin/busybox --list-full); do
    [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$root/$applet"
done

# put HOSTFILE IMAGEPATH: a regular file (symlinks resolved), replacing any
# busybox link there (cp onto a link would overwrite busybox itself)
put() {
    mkdir -p "$root${2%/*}"
    rm -f "$root$2"
    cp -L "$1" "$root$2"
}

# with_libs FILE: the libraries and the loader a dynamic FILE needs, at host paths
with_libs() {
    is_static "$1" && return 0
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

dynamic=""
for b in "$@"; do
    put "$b" "/usr/local/bin/${b##*/}"
    is_static "$b" || dynamic="$dynamic ${b##*/}"
    with_libs "$b"
done
host_tools=""
for tool in /usr/sbin/dnsmasq /usr/bin/curl; do
    [ -x "$tool" ] || continue
    put "$tool" "$tool"
    with_libs "$tool"
    host_tools="$host_tools ${tool##*/}"
done
# glibc < 2.34 keeps files/dns in these modules (>= 2.34: small stubs)
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
for lib in libnss_files.so.2 libnss_dns.so.2 libresolv.so.2; do
    for d in /lib/$multiarch /usr/lib/$multiarch; do
        [ -e "$root$d/$lib" ] && break      # already there (a program needs it)
        [ -e "$d/$lib" ] && { put "$d/$lib" "$d/$lib"; break; }
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
mnt() { mkdir -p "$3" && mount -t "$1" "$2" "$3" || echo "@@CONNSCOPE-WARN cannot mount $1 on $3@@"; }
mnt proc proc /proc
mnt sysfs sysfs /sys
mnt devtmpfs devtmpfs /dev
mnt tmpfs tmpfs /tmp
mnt cgroup2 cgroup2 /sys/fs/cgroup
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
