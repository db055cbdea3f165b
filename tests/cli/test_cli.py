# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""connscope-trace's command line: bad input, help, a real run, SIGINT, no privilege,
and the buffered --json output (contract keys in order, the latency bound, and
every event at SIGINT, SIGTERM and --duration end).

Usage: test_cli.py PATH-TO-connscope-trace [unittest arguments]
(or CONNSCOPE_TRACE=PATH). Bad input and --help need no privilege; the run,
SIGINT and unprivileged checks need root and are skipped (with the reason)
without it. Every bad input must exit 1 with a message that says what was
wrong, why, and what to do.
"""

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import json_schema

TRACE = os.environ.get("CONNSCOPE_TRACE", "")
IS_ROOT = os.geteuid() == 0


def run(*args, timeout=20, **kw):
    return subprocess.run([TRACE, *args], capture_output=True, text=True, timeout=timeout, **kw)


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def udp_connect(port, host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, port))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BadInput(unittest.TestCase):
    """Each bad command line: exit 1, nothing on stdout, a message on stderr."""

    def bad(self, *args, says=()):
        r = run(*args)
        self.assertEqual(r.returncode, 1, f"{args}: exit {r.returncode}, stderr {r.stderr!r}")
        self.assertEqual(r.stdout, "", f"{args}: wrote to stdout")
        self.assertTrue(r.stderr.startswith("connscope-trace: "), r.stderr)
        for text in says:
            self.assertIn(text, r.stderr, f"{args}")
        return r.stderr

    def test_unknown_backend_lists_the_valid_ones(self):
        err = self.bad("--backend", "bogus", says=("--backend", "unknown backend 'bogus'"))
        for name in ("auto", "lsm", "fentry", "kprobe", "cgroup", "tracepoint"):
            self.assertIn(name, err)
        self.bad("--backend", "cgroup,", says=("empty backend name",))

    def test_ring_size_names_the_nearest_valid_size(self):
        page = os.sysconf("SC_PAGE_SIZE")
        # Checked before privileges and before the kernel is touched.
        self.bad("--ring-size", "5000", says=(
            "ring size 5000", "power-of-two multiple of the page size",
            f"the nearest valid size is {page}"))
        self.bad("--ring-size", str(3 * page), says=(f"the nearest valid size is {4 * page}",))

    def test_unknown_option(self):
        err = self.bad("--frobnicate", says=("unknown option '--frobnicate'",))
        self.assertIn("Try 'connscope-trace --help'", err)
        self.bad("extra-argument", says=("unknown option 'extra-argument'",))

    def test_missing_value(self):
        for flag in ("--duration", "--ring-size", "--pid", "--uid", "--comm", "--cgroup",
                     "--backend", "--dns-port", "--max-latency-ms", "--stats-interval",
                     "--liveness-interval", "--family", "--port"):
            with self.subTest(flag=flag):
                err = self.bad(flag, says=(flag, "needs a value"))
                self.assertIn("Try 'connscope-trace --help'", err)

    def test_gnu_long_options(self):
        # --flag=value is the same as --flag value; a value for a flag that
        # takes none is refused, and so is an ambiguous prefix.
        self.bad("--duration=abc", says=("--duration: 'abc' is not a number",))
        self.bad("--ring-size=5000", says=("ring size 5000",))
        self.bad("--json=1", says=("option '--json' takes no value",))
        self.bad("--d", says=("unknown option '--d'",))
        r = run("--list-backends", "--backend=cgroup", "--duration=1")
        self.assertNotIn("unknown option", r.stderr)

    def test_port_range_backwards(self):
        self.bad("--port", "10-5", says=("--port: 10-5 is an empty range",))
        self.bad("--port", "70000", says=("--port", "is not a number from 0 to 65535"))
        self.bad("--port", "10-x", says=("--port", "'x' is not a number"))

    def test_family_bogus(self):
        self.bad("--family", "bogus", says=("--family: 'bogus' is not one of inet, inet6, unix",))

    def test_duration_not_a_number(self):
        self.bad("--duration", "abc", says=("--duration: 'abc' is not a number",))
        self.bad("--duration", "-1", says=("--duration: '-1' is not a number",))
        self.bad("--stats-interval", "0", says=("--stats-interval: give at least 1 second",))

    def test_max_latency_out_of_range(self):
        self.bad("--max-latency-ms", "20000", says=("max_latency 20000 ms is out of range",
                                                    "give 1 to 10000 ms"))


class Help(unittest.TestCase):
    def test_help_exits_0(self):
        for flag in ("--help", "-h"):
            r = run(flag)
            self.assertEqual(r.returncode, 0)
            self.assertIn("Usage: connscope-trace", r.stdout)
            self.assertIn("--json", r.stdout)
            self.assertEqual(r.stderr, "")


# One tracer after another from a shell, three TCP connects right after each
# prints "watching" (the sequence of issue 22). stderr goes to a file removed
# before each start: with a stale file the script would read the previous
# run's "watching" and connect before the new tracer had even loaded.
STARTUP_SCRIPT = r"""
port=$1 runs=$2; shift 2
for i in $(seq 1 "$runs"); do
  for backend in "$@"; do
    rm -f "$dir/err" "$dir/out"
    "$TRACE" --json --no-dns --backend "$backend" --port "$port" >"$dir/out" 2>"$dir/err" &
    pid=$!
    until grep -q watching "$dir/err" 2>/dev/null; do
      kill -0 $pid 2>/dev/null || { cat "$dir/err" >&2; exit 2; }
      sleep 0.001
    done
    for k in 1 2 3; do exec 3<>/dev/tcp/127.0.0.1/$port; exec 3>&-; done
    kill -INT $pid; wait $pid
    echo "$backend $(grep -c "\"port\":$port}" "$dir/out")"
  done
done
"""


def available_backends():
    r = run("--list-backends")
    return [line.split(":")[0] for line in r.stdout.splitlines() if line.endswith(": available")]


@unittest.skipUnless(IS_ROOT, "loads BPF programs: needs root")
class StartUp(unittest.TestCase):
    def test_connects_right_after_watching_are_all_reported(self):
        backends = [b for b in available_backends() if b in ("cgroup", "tracepoint", "lsm", "fentry")]
        if not backends:
            self.skipTest("no backend is available here")
        runs = int(os.environ.get("CONNSCOPE_STARTUPS", "15"))
        with socket.socket() as listener, tempfile.TemporaryDirectory(prefix="connscope-startup-") as tmp:
            listener.bind(("127.0.0.1", 0))
            listener.listen(64)
            listener.setblocking(False)
            port = listener.getsockname()[1]
            env = dict(os.environ, TRACE=TRACE, dir=tmp)
            # Each backend after another of its own kind, and the last after the first.
            order = backends + backends[:1] if len(backends) > 1 else backends * 2
            p = subprocess.Popen(["bash", "-c", STARTUP_SCRIPT, "startup", str(port), str(runs), *order],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            while p.poll() is None:  # accept as they come, so the backlog never fills
                select.select([listener, p.stdout], [], [], 0.1)
                try:
                    listener.accept()[0].close()
                except BlockingIOError:
                    pass
            out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        lines = out.split("\n")
        results = [line.split() for line in lines if line.strip()]
        self.assertEqual(len(results), runs * len(order), out)
        missed = [r for r in results if r[1] != "3"]
        self.assertEqual(missed, [], f"start-ups whose connects were not all reported, of {len(results)}")


def link_ids_of(pid, attach_type):
    """bpftool's ids of the links of one attach type whose program process pid holds."""
    progs = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                progs.update(int(line.split()[1]) for line in f if line.startswith("prog_id:"))
        except OSError:
            pass
    r = subprocess.run(["bpftool", "-j", "link", "show"], capture_output=True, text=True)
    return [str(link["id"]) for link in json.loads(r.stdout or "[]")
            if link.get("attach_type") == attach_type and link.get("prog_id") in progs]


@unittest.skipUnless(IS_ROOT, "loads BPF programs: needs root")
class Health(unittest.TestCase):
    @unittest.skipUnless(shutil.which("bpftool"), "needs bpftool to detach a link")
    def test_a_detached_link_is_a_health_record_and_is_repaired(self):
        if "cgroup" not in available_backends():
            self.skipTest("the cgroup backend is not available here")
        p = subprocess.Popen([TRACE, "--json", "--no-dns", "--backend", "cgroup", "--liveness-interval", "1",
                              "--duration", "4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_watching(p)
            ids = link_ids_of(p.pid, "cgroup_inet4_connect")
            self.assertEqual(len(ids), 1, "the backend's one cgroup/connect4 link")
            subprocess.run(["bpftool", "link", "detach", "id", ids[0]], check=True)
            out, err = p.communicate(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 0, err)
        records = [json.loads(line) for line in out.splitlines()]
        health = [r for r in records if r["event"] == "health"]
        self.assertEqual([h["kind"] for h in health], ["link_detached", "reattached"], out)
        self.assertIn("cgroup/connect4", health[0]["what"])
        self.assertEqual(list(health[0]), CONTRACT_KEYS["health"])
        stats = records[-1]
        self.assertEqual((stats["links_detached"], stats["reattachments"], stats["canaries_missed"]), (1, 1, 0))
        self.assertGreater(stats["unwatched_ns"], 0)


@unittest.skipUnless(IS_ROOT, "loads BPF programs: needs root")
class Run(unittest.TestCase):
    def test_json_run_shows_a_connect_and_ends_with_stats(self):
        port = free_port()
        p = subprocess.Popen([TRACE, "--json", "--duration", "2", "--no-dns", "--port", str(port)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_watching(p)
            udp_connect(port)
            out, err = p.communicate(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 0, err)
        records = json_lines(out)
        self.assertTrue(records, "no output")
        connects = [r for r in records if r["event"] == "security_socket_connect"]
        mine = [r for r in connects if r["pid"] == os.getpid()]
        self.assertEqual(len(mine), 1, out)
        ev = mine[0]
        self.assertEqual(ev["remote_addr"], {"family": "AF_INET", "ip": "127.0.0.1", "port": port})
        self.assertEqual(ev["type"], "SOCK_DGRAM")
        self.assertEqual(ev["uid"], os.getuid())
        self.assertIsInstance(ev["sockfd"], int)
        self.assertGreaterEqual(ev["sockfd"], 0)
        self.assertIsInstance(ev["toctou"], bool)
        self.assertEqual(ev["via"], "connect")
        self.assertLess(abs(ev["timestamp"] / 1e9 - time.time()), 60)
        stats = records[-1]
        self.assertEqual(stats["event"], "stats")
        for key in ("events", "lost"):
            self.assertIsInstance(stats[key], int)
            self.assertFalse(isinstance(stats[key], bool))
        self.assertGreaterEqual(stats["events"], 1)
        self.assertEqual(stats["lost"], 0)
        self.assertIn(stats["backend"], ("lsm", "fentry", "kprobe", "cgroup", "tracepoint"))
        self.assertEqual(stats["events"], len(connects))

    def test_sigint_drains_and_exits_0_with_stats(self):
        port = free_port()
        p = subprocess.Popen([TRACE, "--json", "--no-dns", "--port", str(port)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_watching(p)
            # The signal follows the connect at once: its record may still be
            # in the ring when the loop stops, and the drain at exit prints it.
            udp_connect(port)
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 0, err)
        records = json_lines(out)
        self.assertEqual(records[-1]["event"], "stats")
        self.assertEqual(records[-1]["events"], 1)
        ports = [r["remote_addr"].get("port") for r in records if r["event"] == "security_socket_connect"]
        self.assertEqual(ports, [port])

    def test_text_mode_stats_line_on_stderr(self):
        r = run("--duration", "1", "--no-dns", "--port", str(free_port()))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertRegex(r.stderr, r"connscope-trace: \d+ events, \d+ lost \(backend \w+\)\n$")

    def test_text_mode_shows_the_dns_cache_bound_at_exit(self):
        r = run("--duration", "1", "--port", str(free_port()))
        self.assertEqual(r.returncode, 0, r.stderr)
        if "DNS capture on" not in r.stderr:
            self.skipTest("DNS capture is off here: " + r.stderr)
        self.assertRegex(r.stderr, r"connscope-trace: DNS cache \d+ names in [\d.]+ MiB of its 32\.0 MiB bound "
                                   r"\([\d.]+ MiB allocated\), \d+ budget groups; evicted \d+ \(own budget \d+, "
                                   r"global bound \d+\), expired \d+; DNS records lost \d+ \(ring past its DNS "
                                   r"limit \d+\)\nconnscope-trace: \d+ events, \d+ lost \(backend \w+\)\n$")

    @unittest.skipUnless(shutil.which("setpriv"), "needs setpriv (util-linux)")
    def test_unprivileged_names_the_missing_capabilities(self):
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "--inh-caps=-all", TRACE, "--duration", "1"],
                           capture_output=True, text=True, timeout=20)
        if r.returncode == 127 or "Permission denied" in r.stderr and "connscope-trace:" not in r.stderr:
            self.skipTest(f"nobody cannot run {TRACE}: {r.stderr.strip()}")
        self.assertEqual(r.returncode, 1, r.stderr)
        for cap in ("CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"):
            self.assertIn(cap, r.stderr)
        self.assertIn("run as root or grant", r.stderr)
        self.assertEqual(r.stdout, "")

    @unittest.skipUnless(shutil.which("setpriv"), "needs setpriv (util-linux)")
    def test_unprivileged_list_backends(self):
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "--inh-caps=-all", TRACE, "--list-backends"],
                           capture_output=True, text=True, timeout=20)
        if r.returncode == 127:
            self.skipTest(f"nobody cannot run {TRACE}")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("auto: none", r.stdout)
        self.assertIn("missing CAP_BPF", r.stdout)


# The --json contract (docs/schema.json, lib/records/format.cpp): keys in this order.
SCHEMA = json_schema.load()
CONTRACT_KEYS = {name: json_schema.keys_of(SCHEMA, name)
                 for name in ("security_socket_connect", "net_tcp_connect", "connect_outcome", "stats", "health")}


def ordered_lines(text):
    """Each line as a list of (key, value) pairs in the order printed; fails on a line that is not JSON."""
    assert text.endswith("\n"), f"output does not end with a newline: {text[-200:]!r}"
    return [json.loads(line, object_pairs_hook=list) for line in text.split("\n")[:-1]]


def tcp_connect(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.connect(("127.0.0.1", port))


class LineReader:
    """Reads a child's stdout without blocking, line by line, with a deadline."""

    def __init__(self, p):
        self.fd = p.stdout.fileno()
        self.buf = b""

    def until(self, pred, timeout):
        """Reads lines until pred(line) holds; returns (line, seconds waited) or (None, timeout)."""
        start = time.monotonic()
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                if pred(json.loads(line)):
                    return line, time.monotonic() - start
            left = timeout - (time.monotonic() - start)
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None, timeout
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None, timeout
            self.buf += chunk

    def rest(self):
        while chunk := os.read(self.fd, 65536):
            self.buf += chunk
        return self.buf.decode()


@unittest.skipUnless(IS_ROOT, "loads BPF programs: needs root")
class JsonOutput(unittest.TestCase):
    """The buffered --json writer: the contract's keys in order, output within
    the latency bound while running, and everything at SIGINT, SIGTERM and --duration end."""

    def start(self, *args):
        p = subprocess.Popen([TRACE, "--json", "--no-dns", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, bufsize=0)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(), p.stdout.close(), p.stderr.close()))
        deadline = time.time() + 15
        while time.time() < deadline:
            line = p.stderr.readline().decode()
            if not line:
                raise AssertionError(f"connscope-trace exited early (status {p.wait()})")
            if "DNS capture" in line:
                return p
        raise AssertionError("connscope-trace did not start watching")

    def check_contract(self, text, port, connects):
        records = ordered_lines(text)
        for rec in records:
            keys = [k for k, _ in rec]
            self.assertEqual(keys, CONTRACT_KEYS[rec[0][1]], rec)
        for line in text.splitlines():
            self.assertEqual(json_schema.record_errors(SCHEMA, json.loads(line)), [], line)
        mine = [dict(r) for r in records if r[0][1] not in ("stats", "connect_outcome") and dict(r)["pid"] == os.getpid()]
        self.assertEqual(sum(1 for r in mine if r["event"] == "security_socket_connect"), connects, text[-2000:])
        for r in mine:
            if r["event"] == "security_socket_connect":
                self.assertEqual([k for k, _ in r["remote_addr"]], ["family", "ip", "port"])
                self.assertEqual(dict(r["remote_addr"])["port"], port)
            else:
                self.assertEqual(r["dst_port"], port)
        stats = dict(records[-1])
        self.assertEqual(stats["event"], "stats")
        self.assertEqual(stats["lost"], 0)
        self.assertEqual(stats["events"], sum(1 for r in records if r[0][1] == "security_socket_connect"))
        self.assertEqual(stats["tcp_events"], sum(1 for r in records if r[0][1] == "net_tcp_connect"))
        return mine

    def test_tcp_and_udp_records_have_the_contract_keys_in_order(self):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)
            port = listener.getsockname()[1]
            p = self.start("--duration", "2", "--port", str(port))
            tcp_connect(port)
            udp_connect(port)
            out, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 0, err)
        mine = self.check_contract(out.decode(), port, 2)
        self.assertEqual(sorted(r["event"] for r in mine),
                         ["net_tcp_connect", "security_socket_connect", "security_socket_connect"])
        tcp = [r for r in mine if r["event"] == "net_tcp_connect"][0]
        self.assertEqual((tcp["dst_ip"], tcp["results"]), ("127.0.0.1", []))
        # Each connect's outcome, after it, joined by connect_id.
        records = [json.loads(line) for line in out.decode().splitlines()]
        outcomes = {r["connect_id"]: r for r in records if r["event"] == "connect_outcome"}
        for c in (r for r in mine if r["event"] == "security_socket_connect"):
            o = outcomes.get(c["connect_id"])
            self.assertIsNotNone(o, f"no connect_outcome for {c}")
            self.assertGreater(o["seq"], c["seq"])
            self.assertEqual((o["pid"], o["tid"], o["result"], o["error"]), (c["pid"], c["tid"], 0, ""))
            self.assertEqual(o["outcome"], "established" if c["type"] == "SOCK_STREAM" else "connected")
            self.assertEqual(o["local_addr"]["ip"], "127.0.0.1")
            self.assertGreater(o["local_addr"]["port"], 0)
        self.assertEqual(tcp["connect_id"], [c for c in mine if c["event"] == "security_socket_connect"
                                             and c["type"] == "SOCK_STREAM"][0]["connect_id"])
        seqs = [r["seq"] for r in records if "seq" in r]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(len(seqs), len(set(seqs)))

    def test_events_arrive_within_the_latency_bound(self):
        # Printed while the tool runs, not at exit: each connect's line must
        # come before the next connect is made. The bound is --max-latency-ms
        # plus slack for a loaded machine.
        port = free_port()
        p = self.start("--max-latency-ms", "10", "--port", str(port))
        reader = LineReader(p)
        waits = []
        for _ in range(5):
            udp_connect(port)
            line, waited = reader.until(lambda r: r.get("event") == "security_socket_connect"
                                        and r["remote_addr"].get("port") == port, timeout=5)
            self.assertIsNotNone(line, "an event was not printed within 5 s while the tool ran")
            waits.append(waited)
        self.assertLess(sorted(waits)[2], 0.5, f"median wait {sorted(waits)[2]:.3f} s for a 10 ms bound: {waits}")
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
        self.assertEqual(p.returncode, 0)
        stats = json.loads(reader.rest().splitlines()[-1])
        self.assertEqual((stats["event"], stats["events"]), ("stats", 5))

    def many_connects_then(self, stop, n=1500):
        # 1500 records are ~600 KB of JSON: more than the output buffer holds,
        # so it is written out while events arrive as well as at the end.
        port = free_port()
        p = self.start("--port", str(port), *(["--duration", "3"] if stop is None else []))
        for _ in range(n):
            udp_connect(port)
        if stop is not None:
            p.send_signal(stop)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        self.check_contract(out.decode(), port, n)

    def test_sigterm_writes_every_event_and_the_stats(self):
        self.many_connects_then(signal.SIGTERM)

    def test_sigint_writes_every_event_and_the_stats(self):
        self.many_connects_then(signal.SIGINT)

    def test_duration_end_writes_every_event_and_the_stats(self):
        self.many_connects_then(None)

    def test_closed_stdout_is_an_error_not_a_hang(self):
        port = free_port()
        p = self.start("--port", str(port))
        p.stdout.close()
        udp_connect(port)
        # SIGPIPE ends it (as it ended the stdio version); either way it must not keep running.
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.fail("connscope-trace kept running after its stdout was closed")
        self.assertNotEqual(p.returncode, 0)


def wait_watching(p, timeout=15):
    """Reads stderr until the tool says it is watching (the Session is attached)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = p.stderr.readline()
        if not line:
            raise AssertionError(f"connscope-trace exited early (status {p.wait()})")
        if "DNS capture" in line:  # the last of the start-up lines
            return
    raise AssertionError("connscope-trace did not start watching")


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        TRACE = sys.argv.pop(1)
    if not TRACE or not os.access(TRACE, os.X_OK):
        print(f"usage: {sys.argv[0]} PATH-TO-connscope-trace (got {TRACE!r})", file=sys.stderr)
        sys.exit(2)
    unittest.main(verbosity=2)
