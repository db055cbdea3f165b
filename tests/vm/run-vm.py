#!/usr/bin/env python3
"""Boot stock Debian kernels in QEMU (TCG) and run commands inside them.

  run-vm.py suite --test BIN --trace BIN [--cache DIR] [--workdir DIR]
      The meson `vm` suite: every backend on 6.1 and 6.12, plus a 6.12 boot
      without the BPF LSM. Exit 0 ok, 1 failure, 77 no QEMU or no kernels.
  run-vm.py shell --kernel 6.12 [--bin FILE]... [--no-bpf-lsm] [--append ARGS] -- CMD...
      Debugging: one command in one VM; prints its output, exits with its status.

Standard library only (Python 3.11). The lsm, fentry and kprobe backends cannot
be tested on the build host (trampolines refused, no kprobes), hence the VMs.
"""
import argparse
import concurrent.futures
import gzip
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
QEMU = "qemu-system-x86_64"
KERNELS = ("6.1", "6.12")
BACKENDS = ("lsm", "fentry", "kprobe", "cgroup", "tracepoint")
SKIP = 77
BEGIN = re.compile(r"@@CONNSCOPE-BEGIN (\S+)@@")
END = re.compile(r"@@CONNSCOPE-END (\S+) rc=(\d+)@@")


@dataclass
class Job:
    rc: int | None = None      # None: never finished (timeout, crash)
    output: str = ""


@dataclass
class Boot:
    kernel: str
    jobs: dict[str, Job] = field(default_factory=dict)
    seconds: float = 0.0
    booted: str = ""           # the BOOTED marker line (kernel release, active LSMs)
    timed_out: bool = False
    console: str = ""


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
         tag: str, append: str = "", timeout: float = 600, job_timeout: int = 240) -> Boot:
    """One VM: runs each job script (name -> sh text) in order, returns their results."""
    entries = [("connscope", 0o40755, None), ("connscope/jobs", 0o40755, None),
               ("connscope/timeout", 0o100644, b"%d\n" % job_timeout)]
    for i, (name, script) in enumerate(jobs.items()):
        entries.append((f"connscope/jobs/{i:02d}-{name}", 0o100755, script.encode()))
    # The kernel unpacks concatenated archives in order: the jobs overlay the base.
    base = base_initrd.read_bytes()
    initrd = workdir / f"{tag}.initrd"
    initrd.write_bytes(base + b"\0" * (-len(base) % 4) + newc(entries))
    cmd = [QEMU, "-machine", "accel=tcg", "-cpu", "max", "-m", "512", "-nographic",
           "-no-reboot", "-kernel", str(kernel_dir / "vmlinuz"), "-initrd", str(initrd),
           "-append", f"console=ttyS0 panic=-1 loglevel=4 {append}".strip()]
    result = Boot(kernel=kernel_dir.name)
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
        raw = proc.stdout
    except subprocess.TimeoutExpired as e:   # run() has killed QEMU already
        raw, result.timed_out = e.stdout or b"", True
    result.seconds = time.monotonic() - start
    result.console = raw.decode(errors="replace").replace("\r\n", "\n")
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


def lsm_without_bpf(kernel_dir: Path) -> str:
    """The kernel's default LSM order with bpf removed, as an lsm= parameter."""
    lsms = [x for x in config(kernel_dir).get("CONFIG_LSM", "").split(",") if x and x != "bpf"]
    return "lsm=" + ",".join(lsms)


def expected_backends(kernel_dir: Path, bpf_lsm_active: bool) -> set[str]:
    """Backends the kernel config says must work; a skip of these is a failure,
    otherwise a broken probe could hide the very backends these VMs exist for."""
    cfg = config(kernel_dir)
    on = lambda k: cfg.get(k) == "y"
    btf = on("CONFIG_DEBUG_INFO_BTF")
    want = set()
    if btf and on("CONFIG_BPF_LSM") and bpf_lsm_active:
        want.add("lsm")
    if btf and on("CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS"):
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
    if not shutil.which(QEMU):
        print(f"SKIP: {QEMU} not found", flush=True)
        sys.exit(SKIP)
    # CONNSCOPE_VM_CACHE wins so CI can keep kernels across fresh build dirs
    cache = Path(os.environ.get("CONNSCOPE_VM_CACHE") or args.cache).resolve()
    r = subprocess.run(["sh", str(HERE / "fetch-kernels.sh"), str(cache)])
    if r.returncode == SKIP:
        print("SKIP: kernels unavailable (see fetch-kernels output)", flush=True)
        sys.exit(SKIP)
    if r.returncode:
        sys.exit(f"fetch-kernels.sh failed with {r.returncode}")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="connscope-vm-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    initrd = workdir / "base.cpio.gz"
    r = subprocess.run(["sh", str(HERE / "make-initramfs.sh"), str(initrd), *args.bin])
    if r.returncode == SKIP:
        sys.exit(SKIP)
    if r.returncode:
        sys.exit(f"make-initramfs.sh failed with {r.returncode}")
    return cache, workdir


def sh(argv, env=None) -> str:
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in (env or {}).items())
    return exports + "exec " + " ".join(shlex.quote(a) for a in argv) + "\n"


def reason(output: str) -> str:
    """The skip reason: a line saying skip/unavailable, else the last line."""
    lines = [l.strip() for l in output.splitlines() if l.strip()]
    for l in reversed(lines):
        if re.search(r"skip|unavailable|not available|unsupported", l, re.I):
            return l[:160]
    return lines[-1][:160] if lines else "no reason given"


def cmd_shell(args) -> int:
    cache, workdir = prepare(args)
    kdir = cache / args.kernel
    append = " ".join(filter(None, [lsm_without_bpf(kdir) if args.no_bpf_lsm else "", args.append]))
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    b = boot(kdir, workdir / "base.cpio.gz", {"shell": sh(command)}, workdir, "shell",
             append, args.timeout, int(args.timeout))
    job = b.jobs["shell"]
    print(job.output, end="")
    print(f"[{b.booted}] rc={job.rc} boot+run {b.seconds:.1f}s"
          f"{' TIMEOUT' if b.timed_out else ''}; console log {workdir}/shell.console.log",
          file=sys.stderr)
    return 1 if job.rc is None else job.rc


def cmd_suite(args) -> int:
    args.bin = [args.test, args.trace]
    cache, workdir = prepare(args)
    test, trace = Path(args.test).name, Path(args.trace).name
    plans = []   # (label, kernel dir, append, jobs, expected backends)
    for k in KERNELS:
        jobs = {f"backend-{b}": sh([test], {"CONNSCOPE_TEST_BACKEND": b}) for b in BACKENDS}
        jobs["list-backends"] = sh([trace, "--list-backends"])
        jobs["overhead"] = sh([test, "[.overhead]"])  # a measurement, reported, never judged
        plans.append((k, cache / k, "", jobs, expected_backends(cache / k, True)))
    k = cache / "6.12"
    plans.append(("6.12-no-bpf-lsm", k, lsm_without_bpf(k),
                  {"list-backends": sh([trace, "--list-backends"]),
                   "trace-auto": sh([trace, "--duration", "1", "--json"])}, set()))

    # TCG uses one host thread per VM; run boots side by side when there are CPUs.
    with concurrent.futures.ThreadPoolExecutor(max(1, min(len(plans), os.cpu_count() or 1))) as ex:
        futures = [ex.submit(boot, kdir, workdir / "base.cpio.gz", jobs, workdir, label,
                             append, args.timeout) for label, kdir, append, jobs, _ in plans]
        boots = [f.result() for f in futures]

    failed = False
    cols = [*BACKENDS, "list-backends", "trace-auto"]
    rows, notes = [], []
    for (label, kdir, append, jobs, want), b in zip(plans, boots):
        pkg = (kdir / "package").read_text().split()[0] if (kdir / "package").exists() else "?"
        cells = {}
        for name, job in b.jobs.items():
            if name == "overhead":
                notes.extend(f"{label} {l}" for l in job.output.splitlines() if l.startswith("overhead:"))
                continue
            col = name.removeprefix("backend-")
            if job.rc == 0:
                verdict = "pass"
            elif job.rc == SKIP and name.startswith("backend-"):
                verdict = "unavailable"
                notes.append(f"{label} {col}: unavailable: {reason(job.output)}")
                if col in want and not args.allow_unavailable:
                    verdict = "FAIL(skip)"
                    notes.append(f"{label} {col}: FAIL: kernel config says it must work")
            else:
                verdict = "TIMEOUT" if job.rc is None else f"FAIL({job.rc})"
            cells[col] = verdict
        if label.endswith("no-bpf-lsm"):
            for col, msg in check_no_bpf_lsm(b):
                cells[col] = "FAIL(check)"
                notes.append(f"{label} {col}: FAIL: {msg}")
        for col, verdict in cells.items():
            if verdict.startswith(("FAIL", "TIMEOUT")):
                failed = True
                out = b.jobs[col if col in b.jobs else "backend-" + col].output.rstrip().splitlines()
                notes.append(f"--- {label} {col} output (last 80 lines) ---")
                notes.extend(out[-80:])
        rows.append([f"{label} ({pkg.removeprefix('linux-image-')}, {b.seconds:.0f}s)",
                     *(cells.get(c, "-") for c in cols)])

    width = [max(len(r[i]) for r in rows + [["kernel", *cols]]) for i in range(len(cols) + 1)]
    for r in [["kernel", *cols], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, width)))
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
    p.add_argument("--cache", default=Path.home() / ".cache/connscope-vm",
                   help="kernel cache (env CONNSCOPE_VM_CACHE overrides)")
    p.add_argument("--workdir", help="initramfs and console logs (default: a new temp dir)")
    p.add_argument("--timeout", type=float, default=600, help="hard limit per boot, seconds")
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("suite")
    s.add_argument("--test", required=True, help="static integration test binary")
    s.add_argument("--trace", required=True, help="static connscope-trace")
    s.add_argument("--allow-unavailable", action="store_true",
                   help="accept skips of backends the kernel config says work")
    s = sub.add_parser("shell")
    s.add_argument("--kernel", choices=KERNELS, default="6.12")
    s.add_argument("--bin", action="append", default=[], help="static binary to put in PATH")
    s.add_argument("--no-bpf-lsm", action="store_true", help="boot with lsm= minus bpf")
    s.add_argument("--append", default="", help="extra kernel parameters")
    s.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args()
    return cmd_suite(args) if args.mode == "suite" else cmd_shell(args)


if __name__ == "__main__":
    sys.exit(main())
