#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""The installed package finds the installed library by itself.

usage: test_installed.py MESON BUILDDIR PYTHON_INSTALL_DIR LIBDIR VERSION

Runs `meson install --destdir` into a temporary directory, then a Python
process whose only setting is PYTHONPATH=<destdir><PYTHON_INSTALL_DIR> (no
CONNSCOPE_LIBRARY, no LD_LIBRARY_PATH) imports connscope and must have
mapped the libconnscope of <destdir><LIBDIR>, through the generated
_install module's relative path. As root it also starts a Session and
receives the typed events of a real TCP connect to a loopback listener it
makes, its outcome (established) included. Without root the install and load are checked, then it exits 77.
"""

import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.geteuid() == 0

# Runs in the clean process. argv: destdir, site dir, libdir (both inside
# destdir), the version the library must report, "root" or "user".
CHILD = r"""
import os, socket, sys, time
destdir, site, libdir = sys.argv[1:4]
import connscope
from connscope import _ffi, _install

def check(ok, what):
    if not ok:
        sys.exit(f"FAIL: {what}")

check(os.path.dirname(os.path.abspath(connscope.__file__)) == os.path.join(site, "connscope"),
      f"connscope came from {connscope.__file__}, not {site}")
check(not os.path.isabs(_install.LIBRARY_RELATIVE), f"relative path {_install.LIBRARY_RELATIVE!r}")
want = os.path.join(libdir, "libconnscope.so.0")
check(_ffi.find_library() == want, f"find_library() is {_ffi.find_library()!r}, not {want!r}")
version = connscope.library_version()
check(version == sys.argv[4], f"library version {version}, not {sys.argv[4]}")
with open("/proc/self/maps") as f:
    mapped = {line.split()[-1] for line in f if "libconnscope" in line}
real_destdir = os.path.realpath(destdir) + os.sep
check(mapped, "no libconnscope is mapped")
check(all(p.startswith(real_destdir) for p in mapped), f"mapped {sorted(mapped)}, not from {destdir}")
print(f"loaded {sorted(mapped)}")
if sys.argv[5] != "root":
    sys.exit(0)

me = os.getpid()
with connscope.Session(dns=False, max_latency_ms=5, pids=[me], exclude_self=False) as session:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as s:
            fd = s.fileno()
            local_port = s.getsockname()[1]
            connect = tcp = None
            outcomes = []
            end = time.monotonic() + 5
            while (connect is None or tcp is None or not outcomes) and time.monotonic() < end:
                for ev in session.poll(0.05):
                    if isinstance(ev, connscope.SecuritySocketConnect) and ev.sockfd == fd:
                        connect = connect or ev
                    elif isinstance(ev, connscope.NetTcpConnect) and ev.dst_port == port:
                        tcp = tcp or ev
                    elif (isinstance(ev, connscope.ConnectOutcome) and connect is not None
                          and ev.connect_id == connect.connect_id):
                        outcomes.append(ev)
check(connect is not None, f"no SecuritySocketConnect for the connect to port {port}")
check(tcp is not None, f"no NetTcpConnect for the connect to port {port}")
check(len(outcomes) == 1, f"no ConnectOutcome for the connect to port {port}")
outcome = outcomes[0]
check((outcome.outcome, outcome.result, outcome.local_addr)
      == ("established", 0, {"family": "AF_INET", "ip": "127.0.0.1", "port": local_port}), outcome)
check(tcp.connect_id == connect.connect_id and outcome.seq > tcp.seq > connect.seq, (connect, tcp, outcome))
check((connect.pid, connect.type, connect.remote_addr)
      == (me, "SOCK_STREAM", {"family": "AF_INET", "ip": "127.0.0.1", "port": port}), connect)
check((tcp.pid, tcp.sockfd, tcp.dst_ip, tcp.results) == (me, fd, "127.0.0.1", []), tcp)
print(f"events: {connect.event}, {tcp.event} and {outcome.event} ({outcome.outcome}) to 127.0.0.1:{port}")
"""


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 6:
        fail("usage: test_installed.py MESON BUILDDIR PYTHON_INSTALL_DIR LIBDIR VERSION")
    meson, builddir, python_dir, libdir, version = sys.argv[1:]
    destdir = tempfile.mkdtemp(prefix="connscope-install-")
    try:
        # The test run built everything already; install only what a Python
        # user needs (the library and the package).
        cmd = [meson, "install", "-C", builddir, "--destdir", destdir, "--no-rebuild",
               "--tags", "runtime,python-runtime"]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            fail(f"{' '.join(cmd)} exited {out.returncode}:\n{out.stdout}{out.stderr}")
        site = destdir + python_dir
        staged_lib = destdir + libdir
        for path in [os.path.join(site, "connscope", name)
                     for name in ("__init__.py", "__main__.py", "_ffi.py", "_install.py")] + \
                    [os.path.join(staged_lib, "libconnscope.so.0")]:
            if not os.path.exists(path):
                fail(f"{path} was not installed; installed: "
                     f"{[os.path.join(d, f) for d, _, fs in os.walk(destdir) for f in fs]}")

        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": site,
               "PYTHONDONTWRITEBYTECODE": "1"}
        child = subprocess.run(
            [sys.executable, "-c", CHILD, destdir, site, staged_lib, version,
             "root" if ROOT else "user"],
            env=env, cwd=destdir, capture_output=True, text=True, timeout=60)
        sys.stdout.write(child.stdout)
        if child.returncode != 0:
            fail(f"the installed package, PYTHONPATH={site} only, exited {child.returncode}:\n"
                 f"{child.stderr}")
        # The module's CLI is installed too (its help needs no root).
        cli = subprocess.run([sys.executable, "-m", "connscope", "--help"], env=env, cwd=destdir,
                             capture_output=True, text=True, timeout=60)
        if cli.returncode != 0 or "--duration" not in cli.stdout:
            fail(f"python3 -m connscope --help from {site}: {cli.returncode}\n{cli.stderr}")
    finally:
        shutil.rmtree(destdir, ignore_errors=True)
    if not ROOT:
        print("SKIP: installed and loaded from the destdir; the Session part of "
              "tests/python/test_installed.py needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)")
        sys.exit(77)
    print("ok: the installed package loaded the installed library and received events")


if __name__ == "__main__":
    main()
