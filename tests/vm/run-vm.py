#!/usr/bin/env python3
"""Boot stock Debian kernels in QEMU (TCG) and run commands inside them.

  run-vm.py [--arch arm64] suite --test BIN --trace BIN [--bench DIR] [--cache DIR] [--workdir DIR]
      The meson `vm` suite (`vm-arm64` with --arch arm64): per kernel (5.10, 6.1, 6.12)
      the backend tests (BACKEND_TESTS) and the [dns] cases once per backend, the
      rest of the integration tests once (SHARED_TESTS, on FULL_ON's backend),
      connscope-trace --list-backends and the trace-dns job (curl resolving a CNAME
      chain through dnsmasq over UDP and TCP DNS while connscope-trace --json
      watches), in two boots per kernel on x86_64; plus a 6.12 boot without the BPF
      LSM and a 6.12 boot of a cgroup v1-only host (connscope.cgroup=v1: no cgroup2
      mounted; the integration and DNS tests of the cgroup and lsm backends, and
      trace-dns). Boots run side by side, one per host CPU. Exit 0 ok, 1 failure,
      77 no QEMU or no kernels.
  run-vm.py [--arch arm64] shell --kernel 6.12 [--bin FILE]... [--no-bpf-lsm] [--append ARGS] -- CMD...
      Debugging: one command in one VM; prints its output, exits with its status.

--arch arm64 boots Debian's arm64 cloud kernels in qemu-system-aarch64 (-machine
virt -cpu max, TCG) with an image of arm64 Debian packages (fetch-userland.sh),
runs a reduced job list (ARM64_TESTS) and, with --bench, the benchmarks once as
a smoke test.

Standard library only (Python 3.11). The lsm, fentry and kprobe backends cannot
be tested on the build host (trampolines refused, no kprobes), hence the VMs.
"""
import argparse
import concurrent.futures
import gzip
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Arch:
    debian: str           # Debian's name: the kernel packages' suffix, fetch-kernels.sh's ARCH
    qemu: list[str]       # the emulator and its machine
    console: str
    foreign: bool         # the image is made of this architecture's packages (fetch-userland.sh)
    memory: str           # -m: arm64 runs the benchmarks too


ARCHES = {
    "x86_64": Arch("amd64", ["qemu-system-x86_64", "-machine", "accel=tcg", "-cpu", "max"], "ttyS0", False, "512"),
    # pauth-impdef: QEMU's cheap pointer-authentication hash instead of QARMA,
    # which costs TCG much time; the guest cannot tell.
    "arm64": Arch("arm64", ["qemu-system-aarch64", "-machine", "virt,accel=tcg", "-cpu", "max,pauth-impdef=on"],
                  "ttyAMA0", True, "1024"),
}
ARCH = ARCHES["x86_64"]   # set by main() from --arch
DEFAULT_CACHE = Path.home() / ".cache/connscope-vm"
KERNELS = ("5.10", "6.1", "6.12")
BACKENDS = ("lsm", "fentry", "kprobe", "cgroup", "tracepoint")
SKIP = 77
BEGIN = re.compile(r"@@CONNSCOPE-BEGIN (\S+)@@")
ANSI = re.compile(r"\x1b\[[0-9;]*m")   # Catch2 colours the console (a tty)
END = re.compile(r"@@CONNSCOPE-END (\S+) rc=(\d+)(?: start=([\d.]+) end=([\d.]+))?@@")
# The [dns] cases in the VM: fewer iterations of the ordering stress than on a
# host (TCG is ~10-50x slower). The VMs have one vCPU, so answer and connect
# share it there; the cross-CPU order is the host run's to check.
ORDER_ITERATIONS = "1000"
STARTUPS = "8"  # start-ups in a row per backend and boot (tests/integration/test_liveness.cpp); the host runs 100
# x86_64, to keep CI within its time: per backend and kernel, the tests of what
# each backend's own programs do (BACKEND_TESTS: every connect field and path,
# the outcomes, the liveness proof and canaries, the odd addresses each reads its
# own way) and the [dns] cases; once per kernel, on the backend FULL_ON names,
# the rest of the suite (SHARED_TESTS: the [backends] comparisons, which run every
# available backend in one go, filters, loss accounting, faults, API misuse,
# lifecycle, cgroup scope), so that backend runs the whole suite there and each
# of the three that only VMs can test runs it whole on one kernel. The host runs
# the whole suite on cgroup and the backend tests on tracepoint.
BACKEND_TESTS = "[connect],[outcome],[liveness],[odd]"
# Everything else but [dns] (its own job) and the hidden ones: derived, so a tag
# moved into or out of BACKEND_TESTS is never run twice nor left out.
SHARED_TESTS = "".join(f"~{tag}" for tag in BACKEND_TESTS.split(",")) + "~[dns]~[.]"
FULL_ON = {"5.10": "kprobe", "6.1": "lsm", "6.12": "fentry"}
# arm64 runs a reduced list, to keep CI within its time. Per backend: every test
# of the connect fields and paths (sockfd and via from the registers, Fast Open,
# io_uring, MPTCP, UNIX, threads, fork), and the [dns] cases whole. Once per
# kernel, on the backend auto picks (ARM64_SHARED): the [backends] tests (they
# compare every available backend in one run, so once is all of them), the
# filters and the odd connects, whose BPF code (filters.bpf.h, the sockaddr
# reads) every backend shares. Not at all: the hardening of the API, faults,
# liveness, loss and lifecycle tests (user space, the same code on both), which
# the x86_64 suite and the host run.
ARM64_TESTS = "[connect]"
ARM64_SHARED = "[backends],[filter],[odd]"
ARM64_ORDER_ITERATIONS = "200"
# The benchmarks the bench job runs: those that attach the hooks. Not
# bench-load (needs nginx and ab), bench-soak-rss (minutes), bench-json-output
# and bench-dns-engine (user space only, and fixed sizes of millions of
# messages that take TCG many minutes).
BENCH_SMOKE = ("bench-connect-overhead", "bench-event-throughput", "bench-filter-cost", "bench-traffic-tax")


@dataclass
class Job:
    rc: int | None = None      # None: never finished (timeout, crash)
    output: str = ""
    seconds: float | None = None   # guest uptime between BEGIN and END


@dataclass
class Boot:
    kernel: str
    jobs: dict[str, Job] = field(default_factory=dict)
    seconds: float = 0.0
    booted: str = ""           # the BOOTED marker line (kernel release, active LSMs)
    timed_out: bool = False
    console: str = ""

    def absorb(self, other: "Boot") -> None:
        """Another boot of the same kernel: one row of results."""
        self.jobs.update(other.jobs)
        self.seconds += other.seconds
        self.timed_out = self.timed_out or other.timed_out
        self.booted = self.booted or other.booted
        self.console += other.console


def newc(entries):
    """A gzipped newc cpio archive of (path, mode, data) entries (data None = dir)."""
    out = bytearray()

    def add(name, mode, data):
        name_b = name.encode() + b"\0"
        fields = [len(out) // 4 + 1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0]
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields) + name_b)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for name, mode, data in entries:
        add(name, mode, b"" if data is None else data)
    add("TRAILER!!!", 0, b"")
    return gzip.compress(bytes(out), 1)


def boot(kernel_dir: Path, base_initrd: Path, jobs: dict[str, str], workdir: Path,
         tag: str, append: str = "", timeout: float = 600, job_timeout: int = 420) -> Boot:
    """One VM: runs each job script (name -> sh text) in order, returns their results."""
    entries = [("connscope", 0o40755, None), ("connscope/jobs", 0o40755, None),
               ("connscope/timeout", 0o100644, b"%d\n" % job_timeout)]
    for i, (name, script) in enumerate(jobs.items()):
        entries.append((f"connscope/jobs/{i:02d}-{name}", 0o100755, script.encode()))
    # The kernel unpacks concatenated archives in order: the jobs overlay the base.
    base = base_initrd.read_bytes()
    initrd = workdir / f"{tag}.initrd"
    initrd.write_bytes(base + b"\0" * (-len(base) % 4) + newc(entries))
    cmd = [*ARCH.qemu, "-m", ARCH.memory, "-nographic",
           "-no-reboot", "-kernel", str(kernel_dir / "vmlinuz"), "-initrd", str(initrd),
           "-append", f"console={ARCH.console} panic=-1 loglevel=4 {append}".strip()]
    result = Boot(kernel=kernel_dir.name)
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
        raw = proc.stdout
    except subprocess.TimeoutExpired as e:   # run() has killed QEMU already
        raw, result.timed_out = e.stdout or b"", True
    result.seconds = time.monotonic() - start
    result.console = ANSI.sub("", raw.decode(errors="replace").replace("\r\n", "\n"))
    (workdir / f"{tag}.console.log").write_text(result.console)
    current = None
    for line in result.console.splitlines(keepends=True):
        if m := re.search(r"@@CONNSCOPE-BOOTED (.*)@@", line):
            result.booted = m[1]
        if m := BEGIN.search(line):
            current = result.jobs.setdefault(m[1], Job())
        elif m := END.search(line):
            if current is not None:
                current.output += line[:m.start()]
                current.rc = int(m[2])
                if m[3]:
                    current.seconds = float(m[4]) - float(m[3])
            current = None
        elif current is not None:
            current.output += line
    for name in jobs:
        result.jobs.setdefault(name, Job(output="(never started)"))
    return result


def config(kernel_dir: Path) -> dict[str, str]:
    cfg = {}
    for line in (kernel_dir / "config").read_text().splitlines():
        if line.startswith("CONFIG_"):
            key, _, value = line.partition("=")
            cfg[key] = value.strip('"')
    return cfg


def lsm_param(kernel_dir: Path, bpf: bool) -> str:
    """An lsm= parameter: the kernel's default LSM order without bpf (bpf=False), or
    with bpf appended when the default lacks it (Debian 11) and the kernel has
    CONFIG_BPF_LSM; "" when the default already does."""
    cfg = config(kernel_dir)
    default = [x for x in cfg.get("CONFIG_LSM", "").split(",") if x]
    if not bpf:
        return "lsm=" + ",".join(x for x in default if x != "bpf")
    if "bpf" in default or cfg.get("CONFIG_BPF_LSM") != "y":
        return ""
    return "lsm=" + ",".join([*default, "bpf"])


def active_lsms(b: "Boot") -> list[str]:
    """The LSMs the booted kernel runs, from /sys/kernel/security/lsm."""
    m = re.search(r"\blsm=(\S*)", b.booted)
    return m[1].split(",") if m and m[1] else []


def expected_backends(kernel_dir: Path, bpf_lsm_active: bool) -> set[str]:
    """Backends the kernel config says must work; a skip of these is a failure,
    otherwise a broken probe could hide the very backends these VMs exist for."""
    cfg = config(kernel_dir)
    on = lambda k: cfg.get(k) == "y"
    btf = on("CONFIG_DEBUG_INFO_BTF")
    # A trampoline on a kernel function takes over its ftrace entry: it needs
    # ftrace's direct calls on x86_64 and arm64 alike (arm64: from 6.4, although
    # its JIT makes trampolines from 6.0; Debian's 6.1 lacks them).
    trampolines = on("CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS")
    want = set()
    if btf and on("CONFIG_BPF_LSM") and bpf_lsm_active and trampolines:
        want.add("lsm")
    if btf and trampolines:
        want.add("fentry")
    if on("CONFIG_KPROBES") and on("CONFIG_KPROBE_EVENTS"):
        want.add("kprobe")
    if on("CONFIG_CGROUP_BPF"):
        want.add("cgroup")
    if on("CONFIG_FTRACE_SYSCALLS"):
        want.add("tracepoint")
    return want


def prepare(args) -> tuple[Path, Path]:
    """Kernels and base initramfs, or exit 77 with the reason."""
    qemu = ARCH.qemu[0]
    if not shutil.which(qemu):
        package = "qemu-system-x86" if ARCH.debian == "amd64" else "qemu-system-arm"
        print(f"SKIP: {qemu} not found (Debian package {package}; scripts/install-deps.sh installs it)", flush=True)
        sys.exit(SKIP)
    # CONNSCOPE_VM_CACHE wins so CI can keep kernels across fresh build dirs
    # (a foreign architecture's kernels and packages in a directory of its own)
    shared = os.environ.get("CONNSCOPE_VM_CACHE") or not args.cache
    cache = Path(os.environ.get("CONNSCOPE_VM_CACHE") or args.cache or DEFAULT_CACHE).resolve()
    if shared and ARCH.foreign:
        cache = cache / ARCH.debian
    fetch = ["sh", str(HERE / "fetch-kernels.sh"), str(cache)] + ([ARCH.debian] if ARCH.foreign else [])
    r = subprocess.run(fetch)
    if r.returncode == SKIP:
        print("SKIP: kernels unavailable (see fetch-kernels output)", flush=True)
        sys.exit(SKIP)
    if r.returncode:
        sys.exit(f"fetch-kernels.sh failed with {r.returncode}")
    env = dict(os.environ)
    if ARCH.foreign:
        r = subprocess.run(["sh", str(HERE / "fetch-userland.sh"), str(cache), ARCH.debian])
        if r.returncode == SKIP:
            print(f"SKIP: the {ARCH.debian} packages for the image are unavailable (see fetch-userland output)",
                  flush=True)
            sys.exit(SKIP)
        if r.returncode:
            sys.exit(f"fetch-userland.sh failed with {r.returncode}")
        env["CONNSCOPE_VM_ROOT"] = str(cache / "userland")
    if getattr(args, "bench", None):   # the dynamic benchmarks' libconnscope
        env["CONNSCOPE_VM_LIBS"] = str((Path(args.bench) / ".." / "lib").resolve())
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="connscope-vm-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    initrd = workdir / "base.cpio.gz"
    r = subprocess.run(["sh", str(HERE / "make-initramfs.sh"), str(initrd), *args.bin], env=env)
    if r.returncode == SKIP:
        sys.exit(SKIP)
    if r.returncode:
        sys.exit(f"make-initramfs.sh failed with {r.returncode}")
    return cache, workdir


def sh(argv, env=None) -> str:
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in (env or {}).items())
    return exports + "exec " + " ".join(shlex.quote(a) for a in argv) + "\n"


def reason(output: str, width: int = 160) -> str:
    """The skip reason: a line saying skip/unavailable, else the last line."""
    lines = [l.strip() for l in output.splitlines() if l.strip()]
    for l in reversed(lines):
        if re.search(r"skip|unavailable|not available|unsupported", l, re.I):
            return l[:width]
    return lines[-1][:width] if lines else "no reason given"


# --- Catch2 (v2 console reporter) output --------------------------------------
RULE = "-" * 79
DOTS = "." * 79
DNS_SKIPPED = "[dns] case skipped"   # test_dns.cpp's warning without dnsmasq


def catch_summary(output: str) -> tuple[int, int] | None:
    """(test cases run, failed) from Catch2's last lines, or None if it never got there."""
    if m := re.search(r"All tests passed \(\d+ assertions? in (\d+) test cases?\)", output):
        return int(m[1]), 0
    if m := re.search(r"test cases:\s*(\d+)\s*\|(?:\s*\d+ passed\s*\|)?\s*(\d+) failed", output):
        return int(m[1]), int(m[2])
    if "No tests ran" in output or "No test cases matched" in output:
        return 0, 0
    return None


def catch_failures(output: str) -> dict[str, list[str]]:
    """Failed test case name -> the first lines of its first failure."""
    lines = output.splitlines()
    failed: dict[str, list[str]] = {}
    i = 0
    while i < len(lines):
        if lines[i].strip() != RULE:
            i += 1
            continue
        name = lines[i + 1].strip() if i + 1 < len(lines) else "?"
        try:   # the block: after the dotted line, up to the next header or summary
            start = next(j for j in range(i + 1, min(i + 12, len(lines))) if lines[j].strip() == DOTS) + 1
        except StopIteration:
            i += 1
            continue
        end = next((j for j in range(start, len(lines))
                    if lines[j].strip() == RULE or lines[j].startswith("=====")), len(lines))
        block = [l.rstrip() for l in lines[start:end] if l.strip()]
        at = next((k for k, l in enumerate(block) if "FAILED:" in l), None)
        if at is not None and name not in failed:
            upto = next((k for k in range(at + 1, len(block)) if "FAILED:" in block[k]), len(block))
            failed[name] = block[at:min(upto, at + 8)]
        i = end
    return failed


def test_notes(label: str, col: str, job: Job, seen: dict) -> list[str]:
    """What to print for a failed integration job: which test cases failed and how,
    or, when Catch2 never ran (the session did not start), the first lines. A job
    that failed like an earlier one of the same boot (seen) is only named."""
    summary, failures = catch_summary(job.output), catch_failures(job.output)
    head = f"--- {label} {col}:"
    if summary:
        notes = [f"{head} {summary[1]} of {summary[0]} test cases failed (rc={job.rc})"]
    else:
        notes = [f"{head} rc={job.rc}, Catch2 did not finish"]
    # the same test cases failing at the same checks (addresses, pids differ)
    key = tuple((name, tuple(l for l in lines[:2])) for name, lines in failures.items())
    if failures and key in seen:
        notes[0] += f": the same test cases and checks as {seen[key]}"
        return notes
    if failures:
        seen[key] = col
    for name, lines in failures.items():
        notes.append(f"  * {name}")
        notes.extend("      " + l.strip() for l in lines)
    if not failures:
        out = [l for l in job.output.splitlines() if l.strip()]
        notes.extend("    " + l for l in out[:15])
        if len(out) > 30:
            notes.append("    ...")
        notes.extend("    " + l for l in out[max(15, len(out) - 15):])
    return notes


def load_log_job(trace: str) -> str:
    """What the kernel said when it refused a program: libbpf's own lines about the
    failure and the last lines of each verifier log (where the verifier says why)."""
    return shlex.quote(trace) + """ --verbose --list-backends 2>&1 >/dev/null | awk '
/-- BEGIN PROG LOAD LOG --/ { inlog = 1; n = 0; next }
/-- END PROG LOAD LOG --/ { inlog = 0; for (i = (n > 4 ? n - 4 : 0); i < n; i++) print "    " buf[i]; next }
inlog { buf[n++] = $0; next }
/load failed|failed to load|failed to attach|invalid|unknown func/ { print }'
"""


# --- trace-dns: curl resolves through dnsmasq while connscope-trace watches -----
DNS_SERVER = "127.0.0.153"
HTTP_PORT = 8088
# mode -> (CNAME chain asked by curl, the address its last name has)
TRACE_DNS = {
    "udp": (["www.udp.connscope.test", "cdn.udp.connscope.test", "edge.udp.connscope.test"], "127.0.0.88"),
    "tcp": (["www.tcp.connscope.test", "cdn.tcp.connscope.test", "edge.tcp.connscope.test"], "127.0.0.89"),
}


def trace_dns_job(trace: str) -> str:
    """dnsmasq on DNS_SERVER, busybox httpd on HTTP_PORT, connscope-trace --json, and
    curl by name once per mode, in its own mount namespace with a resolv.conf bound
    over /etc/resolv.conf (use-vc for tcp), as the [dns] tests give their clients."""
    conf = ["local-ttl=300"]
    for chain, ip in TRACE_DNS.values():
        conf += [f"cname={a},{b}" for a, b in zip(chain, chain[1:])]
        conf.append(f"host-record={chain[-1]},{ip}")
    curls = "".join(f"""
echo "== curl http://{chain[0]}:{HTTP_PORT}/ (DNS over {mode})"
unshare -m sh -c 'mount --bind /tmp/td/resolv-{mode}.conf /etc/resolv.conf && exec curl -sS -o /dev/null \\
    -w "curl {mode}: http %{{http_code}} from %{{remote_ip}}\\n" --max-time 30 http://{chain[0]}:{HTTP_PORT}/'
echo "curl {mode} rc=$?"
""" for mode, (chain, ip) in TRACE_DNS.items())
    return f"""set -u
mkdir -p /tmp/td/www && echo connscope > /tmp/td/www/index.html && cd /tmp/td
cat > dnsmasq.conf <<'EOF'
{chr(10).join(conf)}
EOF
printf 'nameserver {DNS_SERVER}\\noptions timeout:2 attempts:3\\n' > resolv-udp.conf
printf 'nameserver {DNS_SERVER}\\noptions timeout:2 attempts:3\\noptions use-vc\\n' > resolv-tcp.conf
dnsmasq --keep-in-foreground --conf-file=/tmp/td/dnsmasq.conf --listen-address={DNS_SERVER} \\
    --bind-interfaces --no-resolv --no-hosts --port=53 --pid-file= --user=root --log-queries \\
    --log-facility=/tmp/td/dnsmasq.log &
dns=$!
httpd -f -p {HTTP_PORT} -h /tmp/td/www &
web=$!
{shlex.quote(trace)} --json > trace.json 2> trace.err &
tr=$!
i=0
while ! grep -q watching trace.err && kill -0 $tr 2>/dev/null && [ $i -lt 600 ]; do usleep 100000; i=$((i+1)); done
{curls}
usleep 500000
kill -TERM $tr; wait $tr; rc=$?
kill $web $dns 2>/dev/null
echo "== connscope-trace rc=$rc; stderr:"; cat trace.err
echo "== dnsmasq log:"; cat dnsmasq.log
echo "== connscope-trace --json:"; cat trace.json
exit $rc
"""


def check_trace_dns(job: Job) -> tuple[str, list[str]]:
    """Each mode's curl connect must be a net_tcp_connect naming its whole chain."""
    events = []
    for line in job.output.splitlines():
        if line.startswith('{"event"'):
            try:
                events.append(json.loads(line))
            except ValueError:
                pass
    backend = next((e.get("backend") for e in events if e.get("event") == "stats"), None)
    started = re.search(r"connscope-trace: watching \(backend (\w+)", job.output)
    notes = [f"backend {backend or (started[1] if started else 'none: connscope-trace did not start')}"]
    bad = []
    for mode, (chain, ip) in TRACE_DNS.items():
        tcp = [e for e in events if e.get("event") == "net_tcp_connect"
               and e.get("dst_ip") == ip and e.get("dst_port") == HTTP_PORT]
        curl = re.search(rf"^curl {mode}: .*$", job.output, re.M)
        curl_rc = re.search(rf"^curl {mode} rc=(\d+)", job.output, re.M)
        said = f"{curl[0] if curl else 'curl printed nothing'} (rc={curl_rc[1] if curl_rc else '?'})"
        if not tcp:
            bad.append(mode)
            notes.append(f"{mode}: no net_tcp_connect to {ip}:{HTTP_PORT}; {said}")
        elif tcp[0].get("results") != chain:
            bad.append(mode)
            notes.append(f"{mode}: net_tcp_connect {ip}:{HTTP_PORT} by {tcp[0].get('comm')} has results "
                         f"{tcp[0].get('results')}, want {chain}")
        else:
            notes.append(f"{mode}: {ip}:{HTTP_PORT} by {tcp[0].get('comm')} named {' -> '.join(chain)}")
    if job.rc is None:
        return "TIMEOUT", notes
    if bad:
        return f"FAIL({','.join(bad)})", notes
    return "pass", notes


def cmd_shell(args) -> int:
    cache, workdir = prepare(args)
    kdir = cache / args.kernel
    append = " ".join(filter(None, [lsm_param(kdir, not args.no_bpf_lsm), args.append]))
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    b = boot(kdir, workdir / "base.cpio.gz", {"shell": sh(command)}, workdir, "shell",
             append, args.timeout, int(args.timeout))
    job = b.jobs["shell"]
    print(job.output, end="")
    print(f"[{b.booted}] rc={job.rc} boot+run {b.seconds:.1f}s"
          f"{' TIMEOUT' if b.timed_out else ''}; console log {workdir}/shell.console.log",
          file=sys.stderr)
    return 1 if job.rc is None else job.rc


# The cgroup v1-only boot's own check: no cgroup2 mount anywhere, v1 ones there.
CGROUP1_MOUNTS = """\
grep ' - cgroup' /proc/self/mountinfo
! grep -q ' - cgroup2 ' /proc/self/mountinfo || { echo 'cgroup2 is mounted'; exit 1; }
grep -q ' - cgroup ' /proc/self/mountinfo || { echo 'no cgroup v1 hierarchy is mounted'; exit 1; }
"""


@dataclass
class Plan:
    label: str            # the kernel's row in the table
    kdir: Path
    append: str
    jobs: dict[str, str]
    part: str = ""        # which of the boots the row is split into

    @property
    def tag(self) -> str:
        return self.label + (f"-{self.part}" if self.part else "")


def bench_job(programs: list[str]) -> str:
    """Each benchmark once with small sizes: that it runs here, not what it measures."""
    sizes = {
        "bench-connect-overhead": ["--rounds", "1", "--udp", "500", "--tcp", "50"],
        "bench-filter-cost": ["--rounds", "1", "--udp", "500", "--tcp", "50"],
        "bench-event-throughput": ["0.2", "1"],
        "bench-traffic-tax": ["--rounds", "1", "--datagrams", "500", "--small-writes", "50",
                              "--large-writes", "20"],
    }
    runs = "".join(f"""
echo "===== {name} (uptime $(cut -d' ' -f1 /proc/uptime))"
{" ".join(shlex.quote(a) for a in [name, *sizes.get(name, [])])}
rc=$?
echo "bench {name} rc=$rc"
case $rc in 0|77) ;; *) failed="$failed {name}" ;; esac
""" for name in programs)
    return f"""echo "TCG emulates the CPU: these timings measure the emulator, not the hooks; no figure or ratio here is a finding."
failed=""
{runs}
[ -z "$failed" ] || {{ echo "benchmarks failed:$failed"; exit 1; }}
"""


def check_bench(job: Job) -> tuple[str, list[str]]:
    """Every benchmark ran (0) or said why not (77); nothing about its figures."""
    ran = re.findall(r"^bench (\S+) rc=(\d+)", job.output, re.M)
    notes = [f"{name}: {'ran' if rc == '0' else 'skipped' if rc == '77' else f'FAILED rc={rc}'}"
             for name, rc in ran]
    if job.rc is None:
        return "TIMEOUT", notes
    if job.rc or not ran:
        return f"FAIL({job.rc})", notes
    return "pass", notes


def cmd_suite(args) -> int:
    bench = sorted(str(p) for p in Path(args.bench).glob("bench-*")
                   if p.is_file() and os.access(p, os.X_OK) and p.name in BENCH_SMOKE) if args.bench else []
    args.bin = [args.test, args.trace, *bench]
    cache, workdir = prepare(args)
    test, trace = Path(args.test).name, Path(args.trace).name
    # arm64: the reduced list (ARM64_TESTS); x86_64: BACKEND_TESTS per backend, SHARED_TESTS once
    tests = ARM64_TESTS if ARCH.foreign else BACKEND_TESTS
    order_iterations = ARM64_ORDER_ITERATIONS if ARCH.foreign else ORDER_ITERATIONS
    plans = []
    for k in KERNELS:
        jobs = {}
        for b in BACKENDS:
            # Start-ups are slow under TCG: a few dozen per backend, not the host's hundred.
            jobs[f"backend-{b}"] = sh([test, "--use-colour", "no", tests],
                                      {"CONNSCOPE_TEST_BACKEND": b, "CONNSCOPE_STARTUPS": STARTUPS})
            jobs[f"dns-{b}"] = sh([test, "--use-colour", "no", "[dns]"], {"CONNSCOPE_TEST_BACKEND": b,
                                                     "CONNSCOPE_ORDER_ITERATIONS": order_iterations})
        if ARCH.foreign:
            jobs["shared"] = sh([test, "--use-colour", "no", ARM64_SHARED], {"CONNSCOPE_TEST_BACKEND": "auto"})
        else:
            jobs["shared"] = sh([test, "--use-colour", "no", SHARED_TESTS],
                                {"CONNSCOPE_TEST_BACKEND": FULL_ON[k], "CONNSCOPE_STARTUPS": STARTUPS})
        jobs["list-backends"] = sh([trace, "--list-backends"])
        jobs["load-log"] = load_log_job(trace)   # shown only when a backend is unavailable
        jobs["trace-dns"] = trace_dns_job(trace)
        if not ARCH.foreign and k == KERNELS[-1]:
            jobs["overhead"] = sh([test, "[.overhead]"])  # a measurement, reported, never judged
        if bench and k == KERNELS[-1]:
            jobs["bench"] = bench_job([Path(b).name for b in bench])   # once, on the newest kernel
        # bpf in lsm= wherever the kernel has the BPF LSM (Debian 11 leaves it out)
        append = lsm_param(cache / k, True)
        if ARCH.foreign:
            plans.append(Plan(k, cache / k, append, jobs))
            continue
        # x86_64: each kernel's jobs in two boots of about the same length (the
        # trampoline and kprobe backends; the cgroup and tracepoint ones with
        # the shared tests), so two at a time keep both CPUs busy to the end.
        first = {n: j for n, j in jobs.items() if n.removeprefix("backend-").removeprefix("dns-")
                 in ("lsm", "fentry", "kprobe")}
        plans.append(Plan(k, cache / k, append, first, part="a"))
        plans.append(Plan(k, cache / k, append, {n: j for n, j in jobs.items() if n not in first}, part="b"))
    k = cache / "6.12"
    # A cgroup v1-only host (no cgroup2 mounted anywhere): the library mounts
    # the unified hierarchy privately for the cgroup backend and the DNS capture.
    plans.append(Plan("6.12-cgroup1", k, lsm_param(k, True) + " connscope.cgroup=v1", {
        "cgroup1-mounts": CGROUP1_MOUNTS,
        # What the cgroup scope changes, not the whole suite again: ~40 s of guest time.
        "backend-cgroup": sh([test, "--use-colour", "no", "[connect],[filter],[scope],[lifecycle]"],
                             {"CONNSCOPE_TEST_BACKEND": "cgroup"}),
        "dns-cgroup": sh([test, "--use-colour", "no", "[dns]"],
                         {"CONNSCOPE_TEST_BACKEND": "cgroup", "CONNSCOPE_ORDER_ITERATIONS": ORDER_ITERATIONS}),
        "dns-lsm": sh([test, "--use-colour", "no", "[dns]"],
                      {"CONNSCOPE_TEST_BACKEND": "lsm", "CONNSCOPE_ORDER_ITERATIONS": ORDER_ITERATIONS}),
        "trace-dns": trace_dns_job(trace)}))
    plans.append(Plan("6.12-no-bpf-lsm", k, lsm_param(k, False),
                      {"list-backends": sh([trace, "--list-backends"]),
                       "trace-auto": sh([trace, "--duration", "1", "--json"])}))

    # TCG uses one host thread per VM: one boot per host CPU at a time, the boots
    # with the most jobs first so the short ones fill the gap at the end.
    workers = max(1, min(len(plans), os.cpu_count() or 1))
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        futures = {p.tag: ex.submit(boot, p.kdir, workdir / "base.cpio.gz", p.jobs, workdir, p.tag,
                                    p.append, args.timeout)
                   for p in sorted(plans, key=lambda p: -len(p.jobs))}
        done = [(p, futures[p.tag].result()) for p in plans]
    wall = time.monotonic() - start
    # One row per kernel: the boots it was split into, as one.
    rows_of: dict[str, tuple[Plan, Boot]] = {}
    for p, b in done:
        if p.label in rows_of:
            rows_of[p.label][1].absorb(b)
        else:
            rows_of[p.label] = (p, b)
    plans, boots = [p for p, _ in rows_of.values()], [b for _, b in rows_of.values()]

    failed = False
    cols = [*BACKENDS, *(f"dns-{b}" for b in BACKENDS), "shared",
            "list-backends", "trace-auto", "trace-dns", "cgroup1-mounts", *(["bench"] if bench else [])]
    job_of = lambda col: f"backend-{col}" if col in BACKENDS else col
    rows, notes = [], []
    for p, b in zip(plans, boots):
        pkg = (p.kdir / "package").read_text().split()[0] if (p.kdir / "package").exists() else "?"
        lsms = active_lsms(b)
        want = set() if p.label.endswith("no-bpf-lsm") else expected_backends(p.kdir, "bpf" in lsms)
        notes.append(f"{p.label}: {b.booted or 'never booted'}{'; booted with ' + p.append if p.append else ''}"
                     f"{' TIMEOUT' if b.timed_out else ''}")
        cells, skip_reasons = {}, {}
        for name, job in b.jobs.items():
            if name == "load-log":
                continue
            if name == "overhead":
                notes.extend(f"{p.label} {l}" for l in job.output.splitlines() if l.startswith("overhead:"))
                continue
            col = name.removeprefix("backend-")
            backend = col.removeprefix("dns-")
            if name == "trace-dns":
                verdict, why = check_trace_dns(job)
                notes.extend(f"{p.label} trace-dns: {l}" for l in why)
            elif name == "bench":
                verdict, why = check_bench(job)
                notes.extend(f"{p.label} bench (smoke test; TCG timings are the emulator's): {l}" for l in why)
            elif job.rc == 0:
                verdict = "pass"
            elif job.rc == SKIP and backend in BACKENDS:
                verdict = "unavailable"
                if backend in want and not args.allow_unavailable:
                    verdict = "FAIL(skip)"
                    why = reason(job.output, 400)
                    notes.append(f"{p.label} {col}: FAIL: unavailable but the kernel config says it must work: "
                                 + (f"the same reason as {skip_reasons[why]}" if why in skip_reasons else why))
                    skip_reasons.setdefault(why, col)
                else:
                    notes.append(f"{p.label} {col}: unavailable: {reason(job.output)}")
            else:
                verdict = "TIMEOUT" if job.rc is None else f"FAIL({job.rc})"
            # A [dns] case without dnsmasq warns and passes: that is not a pass here.
            if name.startswith("dns-") and job.rc == 0:
                summary = catch_summary(job.output)
                if DNS_SKIPPED in job.output or not summary or summary[0] == 0:
                    verdict = "FAIL(not run)"
                    notes.append(f"{p.label} {col}: FAIL: the [dns] cases did not run "
                                 f"({'dnsmasq missing' if DNS_SKIPPED in job.output else 'no test case ran'})")
            if job.seconds is not None and name.startswith(("backend-", "dns-", "shared", "trace-dns", "bench")):
                verdict += f" {job.seconds:.0f}s"
            cells[col] = verdict
        if p.label.endswith("no-bpf-lsm"):
            for col, msg in check_no_bpf_lsm(b):
                cells[col] = "FAIL(check)"
                notes.append(f"{p.label} {col}: FAIL: {msg}")
        seen = {}   # failures already printed for another backend of this boot
        for col in cols:
            verdict = cells.get(col, "-")
            if not verdict.startswith(("FAIL", "TIMEOUT")):
                continue
            failed = True
            job = b.jobs[job_of(col)]
            if verdict.startswith("FAIL(skip)"):
                continue    # its reason is printed above
            if col in BACKENDS or col.startswith("dns-") or col == "shared":
                notes.extend(test_notes(p.label, col, job, seen))
            elif col in ("trace-dns", "bench"):
                notes.append(f"--- {p.label} {col} output (no dnsmasq log, no security_socket_connect) ---")
                out = [l for l in job.output.rstrip().splitlines()
                       if not re.match(r'\{"event":"security_socket_connect"|\w{3} +\d+ [\d:]+ dnsmasq\[', l)]
                notes.extend(out[-40:])
            else:
                notes.append(f"--- {p.label} {col} output (last 40 lines) ---")
                notes.extend(job.output.rstrip().splitlines()[-40:])
        lb = b.jobs.get("list-backends", Job()).output
        if "load-log" in b.jobs and re.search(r"^\w+: unavailable", lb, re.M):
            notes.append(f"--- {p.label}: why the kernel refused (connscope-trace --verbose --list-backends) ---")
            notes.extend(b.jobs["load-log"].output.rstrip().splitlines()[:60])
        rows.append([f"{p.label} ({pkg.removeprefix('linux-image-')}, {b.seconds:.0f}s)",
                     *(cells.get(c, "-") for c in cols)])

    width = [max(len(r[i]) for r in rows + [["kernel", *cols]]) for i in range(len(cols) + 1)]
    for r in [["kernel", *cols], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, width)).rstrip())
    print(f"({ARCH.debian}; columns lsm..tracepoint: the integration tests {tests}; dns-*: the [dns] cases, "
          f"CONNSCOPE_ORDER_ITERATIONS={order_iterations}"
          f"{'; shared: ' + ARM64_SHARED + ' on the backend auto picks' if ARCH.foreign else ''}"
          f"{'; shared: ' + SHARED_TESTS + ' on ' + ', '.join(f'{b} ({k})' for k, b in FULL_ON.items()) if not ARCH.foreign else ''}"
          f"; times are guest seconds per job)")
    print(f"wall time {wall:.0f}s for {len(done)} boots, {workers} at a time")
    print("\n".join(notes))
    print(f"console logs: {workdir}")
    return 1 if failed else 0


def check_no_bpf_lsm(b: Boot):
    """Without bpf in lsm=, auto must fall back to fentry and say why lsm was refused."""
    lb, auto = b.jobs.get("list-backends", Job()), b.jobs.get("trace-auto", Job())
    lsm_lines = [l for l in lb.output.splitlines() if re.match(r"\s*lsm\b", l)]
    if not lsm_lines:
        yield "list-backends", "no line for lsm"
    elif re.search(r"(?<!un)(usable|available)\b|\bok\b", lsm_lines[0], re.I) \
            or len(lsm_lines[0].split()) < 3:
        yield "list-backends", f"lsm not reported as refused with a reason: {lsm_lines[0].strip()!r}"
    if not re.search(r'"backend"\s*:\s*"fentry"|backend\W+fentry\b', auto.output):
        yield "trace-auto", "auto did not report choosing fentry"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", help=f"kernel cache (default {DEFAULT_CACHE}; env CONNSCOPE_VM_CACHE overrides; "
                   "there, arm64 keeps its own in arm64/)")
    p.add_argument("--workdir", help="initramfs and console logs (default: a new temp dir)")
    p.add_argument("--arch", choices=sorted(ARCHES), default="x86_64",
                   help="guest architecture (default x86_64; arm64 needs qemu-system-aarch64)")
    p.add_argument("--timeout", type=float, default=1500,
                   help="hard limit per boot, seconds (a full boot took 860-1100 s under TCG on 2 loaded cores)")
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("suite")
    s.add_argument("--test", required=True, help="static integration test binary")
    s.add_argument("--trace", required=True, help="static connscope-trace")
    s.add_argument("--bench", help="a build's bench/ directory: its benchmarks run once (smoke test)")
    s.add_argument("--allow-unavailable", action="store_true",
                   help="accept skips of backends the kernel config says work")
    s = sub.add_parser("shell")
    s.add_argument("--kernel", choices=KERNELS, default="6.12")
    s.add_argument("--bin", action="append", default=[],
                   help="binary to put in PATH (dynamic ones come with their libraries)")
    s.add_argument("--no-bpf-lsm", action="store_true",
                   help="boot with lsm= minus bpf (default: bpf added where the kernel lacks it, as in suite)")
    s.add_argument("--append", default="", help="extra kernel parameters")
    s.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args()
    global ARCH
    ARCH = ARCHES[args.arch]
    return cmd_suite(args) if args.mode == "suite" else cmd_shell(args)


if __name__ == "__main__":
    sys.exit(main())
