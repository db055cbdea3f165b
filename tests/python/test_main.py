#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""python3 -m connscope prints what connscope-trace --json prints.

usage: test_main.py path/to/connscope-trace

Both run at once, filtered to this process's pid, while it makes real
connects (TCP and UDP over IPv4 and IPv6, a refused TCP connect, a UNIX
path); every event line must be the same bytes in both outputs once what each
session numbers or times itself (timestamp, seq, connect_id, duration_ns:
each program's own BPF hooks read the clock and count) is set aside, and the
stats records must have the same keys in the same order. The keys of each
record are pinned: they are the JSON contract. SIGINT and SIGTERM stop it with the stats
record. The option and help checks need no root; the rest do (exits 77 when
run as a non-root script).
"""

import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TRACE = None  # connscope-trace, from argv
ROOT = os.geteuid() == 0
# What each session counts or times on its own: set aside to compare the outputs.
OWN_NUMBERS = re.compile(r'"(timestamp|seq|connect_id|duration_ns)":(\d+)')

# The JSON contract (lib/records/format.cpp): every record's keys, in order.
PROCESS_KEYS = ["timestamp", "pid", "tid", "ppid", "uid", "gid", "comm", "cgroup_id", "container_id",
                "mnt_ns", "net_ns", "pid_ns", "user_ns", "uts_ns", "ipc_ns", "cgroup_ns"]
CONTRACT_KEYS = {
    "security_socket_connect": ["event", "schema", "seq", "connect_id", *PROCESS_KEYS, "sockfd", "type",
                                "remote_addr", "toctou", "via", "late"],
    "net_tcp_connect": ["event", "schema", "seq", "connect_id", *PROCESS_KEYS, "sockfd", "dst_ip",
                        "dst_port", "results", "via"],
    "connect_outcome": ["event", "schema", "seq", "connect_id", "timestamp", "pid", "tid", "via",
                        "outcome", "result", "error", "lsm", "lsm_error", "tcp", "tcp_error",
                        "duration_ns", "local_addr", "socket_cookie"],
    "health": ["event", "schema", "seq", "kind", "what", "message", "timestamp"],
    "stats": ["event", "schema", "events", "lost", "tcp_events", "dns_messages", "lost_ring_connect",
              "lost_ring_dns", "dns_truncated", "dns_malformed", "dns_tcp_dropped_bytes",
              "decode_errors", "dns_names_evicted", "callback_errors", "canaries_sent",
              "canaries_missed", "links_detached", "reattachments", "unwatched_ns", "outcomes",
              "lost_ring_outcome", "dns_dropped_reserve", "dns_evicted_budget", "dns_evicted_global",
              "dns_expired", "dns_cache_entries", "dns_cache_bytes", "dns_cache_bytes_max",
              "dns_cache_bytes_allocated", "dns_cache_budget_groups", "backend"],
}


def python_cli(*args):
    return [sys.executable, "-m", "connscope", *args]


class Tracer:
    """A running tracer: stdout collected whole, stderr line by line."""

    def __init__(self, argv):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr = []
        self.watching = threading.Event()
        self.reader = threading.Thread(target=self._read_stderr, daemon=True)
        self.reader.start()

    def _read_stderr(self):
        for line in self.proc.stderr:
            text = line.decode(errors="replace")
            self.stderr.append(text)
            if ": watching (" in text:
                self.watching.set()
        self.watching.set()  # at EOF too: wait_watching() then tells which

    def wait_watching(self, timeout=30):
        self.watching.wait(timeout)
        if not any(": watching (" in line for line in self.stderr):
            self.proc.kill()
            raise AssertionError(f"{self.argv[0]} never started: {''.join(self.stderr)}")

    def finish(self, timeout=30):
        """Waits for the exit; returns (returncode, stdout bytes, stderr text)."""
        out, _ = self.proc.communicate(timeout=timeout)
        self.reader.join(timeout)
        return self.proc.returncode, out, "".join(self.stderr)


def make_connects():
    """Connects of several kinds from this process; returns the TCP ports used, in order."""
    ports = []
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family, socket.SOCK_STREAM) as listener:
            listener.bind((host, 0))
            listener.listen(1)
            port = listener.getsockname()[1]
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.connect((host, port))
            ports.append(port)
        if family == socket.AF_INET:
            # The listener is gone: refused.
            with socket.socket(family, socket.SOCK_STREAM) as s:
                if s.connect_ex((host, port)) == 0:
                    raise AssertionError(f"a connect to the closed port {port} succeeded")
            ports.append(port)
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((host, 9))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(path)
            listener.listen(1)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(path)
    return ports


def kinds_seen(events):
    return {(o["event"], o.get("remote_addr", {}).get("family")) for o in events}


def json_lines(test, out: bytes, who: str):
    """Every line of out as (text, object) pairs; each must be one JSON object."""
    test.assertTrue(out.endswith(b"\n"), f"{who}: the output does not end with a newline")
    pairs = []
    for raw in out.split(b"\n")[:-1]:
        text = raw.decode()
        obj = json.loads(text)
        test.assertIsInstance(obj, dict, text)
        test.assertEqual(next(iter(obj)), "event", f"{who}: 'event' is not the first key: {text}")
        test.assertEqual(list(obj.items())[1], ("schema", 1), f"{who}: 'schema' is not the second key: {text}")
        if obj["event"] in CONTRACT_KEYS:
            test.assertEqual(list(obj), CONTRACT_KEYS[obj["event"]], f"{who}: {text}")
        pairs.append((text, obj))
    return pairs


def check_numbering(test, objects, who):
    """seq counts every event up by one; connect_id joins each record with its connect."""
    seqs = [o["seq"] for o in objects]
    test.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))), f"{who}: seq has gaps")
    connects = {}
    for o in objects:
        if o["event"] == "security_socket_connect":
            test.assertNotIn(o["connect_id"], connects, f"{who}: connect_id used twice: {o}")
            connects[o["connect_id"]] = o
        else:
            c = connects.get(o["connect_id"])
            test.assertIsNotNone(c, f"{who}: no connect before {o}")
            test.assertEqual((o["pid"], o["tid"], o["via"]), (c["pid"], c["tid"], c["via"]))
    outcomes = [o["connect_id"] for o in objects if o["event"] == "connect_outcome"]
    test.assertEqual(sorted(outcomes), sorted(connects), f"{who}: not one outcome per connect")


class OptionTest(unittest.TestCase):
    """The command line, without root."""

    @staticmethod
    def flags(text):
        return {m.group(1) for m in re.finditer(r"^\s+(?:-h, )?(--[a-z-]+)", text, re.M)}

    def test_help_has_connscope_traces_options(self):
        py = subprocess.run(python_cli("--help"), capture_output=True, text=True, timeout=60)
        self.assertEqual(py.returncode, 0, py.stderr)
        c = subprocess.run([TRACE, "--help"], capture_output=True, text=True, timeout=60)
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertEqual(self.flags(py.stdout), self.flags(c.stdout) - {"--list-backends"})

    def test_usage_errors(self):
        for args, message in ((["--duration", "x"], "--duration: 'x' is not a number from 0 to"),
                              (["--nope"], "unknown option '--nope'"),
                              (["--family", "ipx"], "--family: 'ipx' is not one of inet, inet6, unix"),
                              (["--port", "9-3"], "--port: 9-3 is an empty range"),
                              (["--pid"], "--pid needs a value")):
            with self.subTest(args=args):
                out = subprocess.run(python_cli(*args), capture_output=True, text=True, timeout=60)
                self.assertEqual(out.returncode, 1)
                self.assertEqual(out.stdout, "")
                self.assertIn(f"connscope: {message}", out.stderr)
                self.assertIn("Try 'python3 -m connscope --help'.", out.stderr)

    def test_bad_backend_is_the_librarys_message(self):
        out = subprocess.run(python_cli("--backend", "nope", "--duration", "0"),
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 1)
        self.assertRegex(out.stderr, r"^connscope: .*nope")
        self.assertEqual(out.stdout, "")


@unittest.skipUnless(ROOT, "needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)")
class SameOutputTest(unittest.TestCase):
    def test_same_records_as_connscope_trace(self):
        me = str(os.getpid())
        args = ["--json", "--duration", "3", "--pid", me]
        c = Tracer([TRACE, *args])
        py = Tracer(python_cli(*args))
        c.wait_watching()
        py.wait_watching()
        ports = make_connects()
        c_rc, c_out, c_err = c.finish()
        py_rc, py_out, py_err = py.finish()
        self.assertEqual((c_rc, py_rc), (0, 0), f"connscope-trace: {c_err}\npython: {py_err}")

        c_lines, py_lines = json_lines(self, c_out, "connscope-trace"), json_lines(self, py_out, "python")
        # The stats record closes both, with the same keys in the same order.
        for who, lines in (("connscope-trace", c_lines), ("python", py_lines)):
            self.assertEqual(lines[-1][1]["event"], "stats", f"{who} did not end with stats")
            self.assertEqual([o["event"] for _, o in lines[:-1] if o["event"] == "stats"], [])
        c_stats, py_stats = c_lines[-1][1], py_lines[-1][1]
        self.assertEqual(list(py_stats), list(c_stats))
        self.assertEqual(py_stats["backend"], c_stats["backend"])
        events = [o for _, o in py_lines[:-1]]
        self.assertEqual(py_stats["events"],
                         len([o for o in events if o["event"] == "security_socket_connect"]))
        self.assertEqual(py_stats["tcp_events"], len([o for o in events if o["event"] == "net_tcp_connect"]))
        self.assertEqual(py_stats["outcomes"], len([o for o in events if o["event"] == "connect_outcome"]))
        self.assertEqual(py_stats["lost"], 0)
        check_numbering(self, events, "python")
        check_numbering(self, [o for _, o in c_lines[:-1]], "connscope-trace")

        # The event lines: byte for byte once each session's own numbers are set aside.
        def masked(lines):
            return [OWN_NUMBERS.sub(r'"\1":0', text) for text, _ in lines[:-1]]

        self.assertEqual(masked(py_lines), masked(c_lines))
        print(f"\ncli: {len(events)} event lines the same in both ({sorted(kinds_seen(events))}), "
              f"stats keys {len(py_stats)}", file=sys.stderr)
        for (_, p), (_, q) in zip(py_lines[:-1], c_lines[:-1]):
            self.assertEqual(list(p), list(q))
            self.assertLess(abs(p["timestamp"] - q["timestamp"]), 10**9, (p, q))
        kinds = {o["event"] for o in events}
        self.assertEqual(kinds, {"security_socket_connect", "net_tcp_connect", "connect_outcome"})
        tcp_ports = [o["dst_port"] for o in events if o["event"] == "net_tcp_connect"]
        self.assertEqual(tcp_ports, ports, "the TCP connects are not all there, in order")
        # Their outcomes, in the same order: established, refused, established.
        tcp_ids = [o["connect_id"] for o in events if o["event"] == "net_tcp_connect"]
        by_id = {o["connect_id"]: o for o in events if o["event"] == "connect_outcome"}
        self.assertEqual([(by_id[i]["outcome"], by_id[i]["result"], by_id[i]["error"]) for i in tcp_ids],
                         [("established", 0, ""), ("refused", -errno.ECONNREFUSED, "ECONNREFUSED"), ("established", 0, "")])
        self.assertEqual(by_id[tcp_ids[0]]["local_addr"]["family"], "AF_INET")
        families = {o["remote_addr"]["family"] for o in events if o["event"] == "security_socket_connect"}
        gaps = [line for line in c_err.splitlines() if " does not see " in line]
        unix_seen = not any("unix" in line.lower() for line in gaps)
        self.assertEqual(families, {"AF_INET", "AF_INET6"} | ({"AF_UNIX"} if unix_seen else set()))
        for who, err in (("connscope-trace", c_err), ("connscope", py_err)):
            self.assertIn(f"{who}: watching (backend {c_stats['backend']}: ", err)
            self.assertIn(f"{who}: DNS capture ", err)


@unittest.skipUnless(ROOT, "needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)")
class SignalTest(unittest.TestCase):
    def stop_with(self, signum, *args):
        tracer = Tracer(python_cli("--pid", str(os.getpid()), *args))
        tracer.wait_watching()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("127.0.0.1", 9))
        time.sleep(0.3)  # well past max_latency: the event is out
        tracer.proc.send_signal(signum)
        rc, out, err = tracer.finish(timeout=10)
        self.assertEqual(rc, 0, err)
        lines = json_lines(self, out, "python")
        self.assertEqual(lines[-1][1]["event"], "stats")
        self.assertNotIn("Traceback", err)
        return [o for _, o in lines]

    def test_sigint(self):
        records = self.stop_with(signal.SIGINT)
        self.assertEqual([o["event"] for o in records[:-1]], ["security_socket_connect", "connect_outcome"])
        connect, outcome, stats = records
        self.assertEqual(outcome["connect_id"], connect["connect_id"])
        self.assertGreater(outcome["seq"], connect["seq"])
        self.assertEqual((outcome["outcome"], outcome["result"], outcome["tcp"]), ("connected", 0, "none"))
        self.assertEqual((stats["events"], stats["outcomes"]), (1, 1))

    def test_no_outcomes(self):
        records = self.stop_with(signal.SIGINT, "--no-outcomes")
        self.assertEqual([o["event"] for o in records[:-1]], ["security_socket_connect"])
        self.assertEqual((records[-1]["events"], records[-1]["outcomes"]), (1, 0))

    def test_sigterm(self):
        records = self.stop_with(signal.SIGTERM)
        self.assertEqual([o["event"] for o in records[:-1]], ["security_socket_connect", "connect_outcome"])


@unittest.skipUnless(ROOT, "needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)")
class VerboseTest(unittest.TestCase):
    def run_cli(self, *args):
        out = subprocess.run(python_cli("--duration", "0", "--no-dns", *args),
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["event"], "stats")
        return out.stderr

    def test_verbose_logs_info(self):
        err = self.run_cli("--verbose")
        backend = re.search(r"^connscope: watching \(backend (\w+):", err, re.M).group(1)
        self.assertRegex(err, rf"(?m)^connscope: info: backend {backend}: ")
        self.assertNotRegex(err, r"(?m)^connscope: debug: ")

    def test_verbose_twice_logs_debug(self):
        # libbpf's own detail comes at debug whenever it loads an object.
        self.assertRegex(self.run_cli("--verbose", "--verbose"), r"(?m)^connscope: debug: libbpf: ")

    def test_quiet_without_verbose(self):
        err = self.run_cli()
        self.assertNotRegex(err, r"(?m)^connscope: (error|warning|info|debug): ")
        self.assertRegex(err, r"(?m)^connscope: watching \(backend ")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: test_main.py path/to/connscope-trace")
    TRACE = sys.argv.pop(1)
    if not ROOT:
        # The option checks run; the rest would only be skipped.
        result = unittest.main(argv=[sys.argv[0], "OptionTest"], verbosity=2, exit=False).result
        if not result.wasSuccessful():
            sys.exit(1)
        print("SKIP: the rest of tests/python/test_main.py needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)")
        sys.exit(77)
    unittest.main(verbosity=2)
