#!/bin/sh
# make-initramfs.sh OUT.cpio.gz BINARY...
# Builds a tiny initramfs: busybox-static + the given static binaries (in
# /usr/local/bin) + an /init that mounts what BPF programs need and runs the jobs
# in /connscope/jobs/ (one shell script each, named NN-NAME, sorted). run-vm.py
# appends the jobs as a second cpio archive at boot time; the kernel unpacks
# concatenated archives in order, so this image is reusable across boots and the
# commands are not limited by the 2 KiB kernel command line or its quoting.
# Each job's output is framed on the console by
#   @@CONNSCOPE-BEGIN NAME@@ ... @@CONNSCOPE-END NAME rc=N@@
# then the VM powers off (QEMU runs with -no-reboot, the kernel with panic=-1,
# so even a dying /init ends the VM instead of hanging it).
set -eu
[ $# -ge 1 ] || { echo "usage: $0 OUT.cpio.gz [BINARY...]" >&2; exit 2; }
out=$1; shift

bb=/bin/busybox
is_static() { ! readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'; }
if ! [ -x $bb ] || ! is_static $bb; then
    # the dynamic "busybox" package cannot run without a libc in the image
    echo "make-initramfs: installing busybox-static" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null ||
        { echo "make-initramfs: SKIP: busybox-static unavailable" >&2; exit 77; }
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/bin "$root"/sbin "$root"/usr/bin "$root"/usr/sbin "$root"/usr/local/bin \
    "$root"/proc "$root"/sys "$root"/dev "$root"/tmp "$root"/root "$root"/etc \
    "$root"/connscope/jobs
cp $bb "$root"/bin/busybox
for applet in $("$root"/bin/busybox --list-full); do
    [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$root/$applet"
done
for b in "$@"; do
    is_static "$b" || { echo "make-initramfs: $b is dynamically linked; the VM has no libc" >&2; exit 1; }
    cp "$b" "$root"/usr/local/bin/
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root"/etc/passwd
echo 'root:x:0:' > "$root"/etc/group
printf '127.0.0.1 localhost\n::1 localhost\n' > "$root"/etc/hosts

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
    # a fresh shell per job; KILL on timeout so one hung job cannot eat the boot
    (cd /tmp && exec timeout -s KILL "$t" sh "$f") </dev/null 2>&1
    rc=$?
    echo
    echo "@@CONNSCOPE-END $n rc=$rc@@"
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
echo "make-initramfs: $out ($(du -k "$out" | cut -f1) KiB) with: busybox $*"
