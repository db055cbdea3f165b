#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""The connscope Python module against the real kernel: real connects, checked field by field.

Needs root; run as a script it exits 77 (skip) otherwise. The library comes
from CONNSCOPE_LIBRARY (tests/python/meson.build sets it to the built one).
"""

import ctypes
import errno
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "python"))
import connscope  # noqa: E402

ROOT = os.geteuid() == 0
NS_NAMES = ("mnt", "net", "pid", "user", "uts", "ipc", "cgroup")


def own_cgroup_path():
    """This process's cgroup v2 path ("0::" in /proc/self/cgroup), or None."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    return None


def own_cgroup_id():
    """The inode of this process's cgroup v2 directory, or None when not found."""
    path = own_cgroup_path()
    if path is None:
        return None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2":
                mount = left.split()[4]
                try:
                    return os.stat(mount + path).st_ino
                except OSError:
                    continue
    return None


@unittest.skipUnless(ROOT, "needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)")
class SessionTest(unittest.TestCase):
    session = None

    @classmethod
    def setUpClass(cls):
        # These tests watch their own connects, which the default leaves out.
        cls.session = connscope.Session(max_latency_ms=5, exclude_self=False)
        cls.info = cls.session.backend()

    @classmethod
    def tearDownClass(cls):
        if cls.session:
            cls.session.close()

    def setUp(self):
        self.session.poll(0)  # drop what other tests left
        self.backlog = []

    def next_events(self, timeout):
        """Events not yet looked at: the backlog first, then a poll."""
        if self.backlog:
            events, self.backlog = self.backlog, []
            return events
        return self.session.poll(timeout)

    def wait_for(self, predicate, kind=connscope.SecuritySocketConnect, timeout=5.0):
        """Polls until an event of kind matches predicate; returns (it, every event seen).

        Events after the match stay in the backlog for the next wait_for.
        """
        seen = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            events = self.next_events(0.05)
            for i, ev in enumerate(events):
                seen.append(ev)
                if isinstance(ev, kind) and predicate(ev):
                    self.backlog = events[i + 1:]
                    return ev, seen
        mine = [e for e in seen if e.pid == os.getpid()]
        self.fail(f"no matching {kind.__name__} within {timeout} s; this process's events: {mine}")

    def mine(self, sock):
        fd, pid = sock.fileno(), os.getpid()
        return lambda ev: ev.pid == pid and ev.sockfd == fd

    def outcome_of(self, ev, timeout=5.0):
        """The ConnectOutcome of the connect event ev (the same connect_id), checked against it."""
        out, _ = self.wait_for(lambda o: o.connect_id == ev.connect_id, kind=connscope.ConnectOutcome,
                               timeout=timeout)
        self.assertEqual(out.event, "connect_outcome")
        self.assertEqual(out.schema, 1)
        self.assertEqual((out.pid, out.tid, out.via), (ev.pid, ev.tid, ev.via))
        self.assertGreater(out.seq, ev.seq, "the outcome is numbered before its connect")
        self.assertEqual(out.sequence, out.seq)
        self.assertEqual(out.timestamp_ns, out.timestamp)
        self.assertGreaterEqual(out.timestamp, ev.timestamp)
        self.assertLess(out.duration_ns, 10 * 10**9)
        self.assertIn(out.lsm, ("allowed", "denied", "unknown"))
        return out

    def check_process(self, ev, tid=None, comm=None):
        self.assertEqual(ev.pid, os.getpid())
        self.assertEqual(ev.tid, tid if tid is not None else threading.get_native_id())
        self.assertEqual(ev.ppid, os.getppid())
        self.assertEqual(ev.uid, os.getuid())
        self.assertEqual(ev.gid, os.getgid())
        if comm is None:
            with open("/proc/thread-self/comm") as f:
                comm = f.read().rstrip("\n")
        self.assertEqual(ev.comm, comm)
        for ns in NS_NAMES:
            self.assertEqual(getattr(ev, ns + "_ns"), os.stat(f"/proc/self/ns/{ns}").st_ino, ns)
        cgroup_id = own_cgroup_id()
        if cgroup_id is not None:
            self.assertEqual(ev.cgroup_id, cgroup_id)
        # A container's id, or "" where this process's cgroup path names none.
        self.assertRegex(ev.container_id, r"^([0-9a-f]{64})?$")
        if not re.search(r"[0-9a-f]{64}", own_cgroup_path() or ""):
            self.assertEqual(ev.container_id, "")
        now = time.time_ns()
        self.assertLess(abs(now - ev.timestamp), 10 * 10**9, "timestamp not near the wall clock")

    def expect_toctou(self):
        return self.info.name == "tracepoint"

    def tcp(self, family, host):
        with socket.socket(family, socket.SOCK_STREAM) as listener:
            listener.bind((host, 0))
            listener.listen(1)
            port = listener.getsockname()[1]
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.connect((host, port))
                local_port = s.getsockname()[1]
                ev, seen = self.wait_for(self.mine(s))
                tcp, seen2 = self.wait_for(self.mine(s), kind=connscope.NetTcpConnect)
                out = self.outcome_of(ev)
        self.assertEqual(ev.event, "security_socket_connect")
        self.assertEqual(ev.schema, 1)
        self.assertNotEqual(ev.connect_id, 0)
        self.assertGreater(ev.seq, 0)
        self.assertEqual(ev.sequence, ev.seq)
        self.assertFalse(ev.late)
        self.check_process(ev)
        self.assertEqual(ev.type, "SOCK_STREAM")
        self.assertEqual(ev.remote_addr, {"family": "AF_INET" if family == socket.AF_INET else "AF_INET6",
                                          "ip": host, "port": port})
        self.assertEqual(ev.toctou, self.expect_toctou())
        self.assertEqual(ev.via, "connect")
        self.assertEqual(tcp.event, "net_tcp_connect")
        self.check_process(tcp)
        self.assertEqual((tcp.dst_ip, tcp.dst_port, tcp.results, tcp.via), (host, port, [], "connect"))
        self.assertEqual(tcp.timestamp, ev.timestamp)
        # The TCP event comes right after its connect event, with the next number.
        everything = seen + seen2
        self.assertEqual(everything.index(tcp), everything.index(ev) + 1)
        self.assertEqual((tcp.connect_id, tcp.seq), (ev.connect_id, ev.seq + 1))
        # A blocking connect to a listener: the handshake completed.
        self.assertEqual((out.outcome, out.result, out.error, out.tcp, out.tcp_error),
                         ("established", 0, "", "established", 0))
        self.assertGreater(out.seq, tcp.seq)
        self.assertEqual(out.local_addr, {"family": ev.remote_addr["family"], "ip": host, "port": local_port})
        self.assertNotEqual(out.socket_cookie, 0)

    def udp(self, family, host):
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((host, 9))
            local_port = s.getsockname()[1]
            ev, seen = self.wait_for(self.mine(s))
            out = self.outcome_of(ev)
            seen += self.backlog + self.session.poll(0.05)
            self.backlog = []
        self.assertEqual((out.outcome, out.result, out.error, out.tcp), ("connected", 0, "", "none"))
        self.assertEqual(out.local_addr, {"family": ev.remote_addr["family"], "ip": host, "port": local_port})
        self.check_process(ev)
        self.assertEqual(ev.type, "SOCK_DGRAM")
        self.assertEqual(ev.remote_addr["ip"], host)
        self.assertEqual(ev.remote_addr["port"], 9)
        self.assertFalse([e for e in seen if isinstance(e, connscope.NetTcpConnect)
                          and e.pid == os.getpid() and e.dst_port == 9], "UDP made a NetTcpConnect")

    def test_cgroup_scope_is_reported(self):
        if self.info.cgroup_root:
            self.assertIn("cgroup id", self.info.cgroup_scope)
        else:
            self.assertTrue(self.info.cgroup_scope.startswith("none: "), self.info.cgroup_scope)

    def test_cgroup_root_not_on_cgroup2_is_refused(self):
        with self.assertRaises(connscope.Error) as ctx:
            connscope.Session(cgroup_root="/proc", liveness_interval_ms=None)
        self.assertEqual(ctx.exception.code, -errno.EINVAL)
        self.assertIn("/proc is not on cgroup v2", ctx.exception.message)
        self.assertIn("--cgroup-root", ctx.exception.message)

    def test_tcp_ipv4(self):
        self.tcp(socket.AF_INET, "127.0.0.1")

    def test_tcp_ipv6(self):
        self.tcp(socket.AF_INET6, "::1")

    def test_udp_ipv4(self):
        self.udp(socket.AF_INET, "127.0.0.1")

    def test_udp_ipv6(self):
        self.udp(socket.AF_INET6, "::1")

    def test_outcome_refused(self):
        # A loopback port nobody listens on: the peer answers with a reset.
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            port = free.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            with self.assertRaises(ConnectionRefusedError):
                s.connect(("127.0.0.1", port))
            ev, _ = self.wait_for(self.mine(s))
            out = self.outcome_of(ev)
        self.assertEqual(ev.remote_addr, {"family": "AF_INET", "ip": "127.0.0.1", "port": port})
        self.assertEqual((out.outcome, out.result, out.error), ("refused", -errno.ECONNREFUSED, "ECONNREFUSED"))
        self.assertEqual((out.tcp, out.tcp_error), ("refused", errno.ECONNREFUSED))

    def test_outcome_of_a_nonblocking_connect(self):
        # connect(2) returns -EINPROGRESS; the outcome waits for the handshake's end.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setblocking(False)
                rc = s.connect_ex(listener.getsockname())
                ev, _ = self.wait_for(self.mine(s))
                out = self.outcome_of(ev)
        if rc == 0:
            self.skipTest("the loopback connect completed at once")
        self.assertEqual(rc, errno.EINPROGRESS)
        self.assertEqual((out.outcome, out.result, out.error, out.tcp),
                         ("established", -errno.EINPROGRESS, "EINPROGRESS", "established"))

    def skip_unless_unix(self):
        if any("unix" in gap.lower() for gap in self.info.gaps):
            self.skipTest(f"backend {self.info.name} cannot see UNIX connects here: {self.info.gaps}")

    def test_unix_path(self):
        self.skip_unless_unix()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "s.sock")
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
                listener.bind(path)
                listener.listen(1)
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(path)
                    ev, seen = self.wait_for(self.mine(s))
                    out = self.outcome_of(ev)
        self.check_process(ev)
        self.assertEqual(ev.type, "SOCK_STREAM")
        self.assertEqual(ev.remote_addr, {"family": "AF_UNIX", "path": path})
        self.assertFalse([e for e in seen if isinstance(e, connscope.NetTcpConnect)
                          and e.pid == os.getpid()], "a UNIX connect made a NetTcpConnect")
        self.assertEqual((out.outcome, out.result, out.tcp, out.local_addr), ("connected", 0, "none", None))

    def test_unix_abstract_dgram(self):
        self.skip_unless_unix()
        name = f"connscope-test-{os.getpid()}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
            server.bind("\0" + name)
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.connect("\0" + name)
                ev, _ = self.wait_for(self.mine(s))
        self.assertEqual(ev.type, "SOCK_DGRAM")
        self.assertEqual(ev.remote_addr, {"family": "AF_UNIX", "path": "@" + name})

    def test_other_thread(self):
        box = {}

        def work():
            box["tid"] = threading.get_native_id()
            with open("/proc/thread-self/comm") as f:
                box["comm"] = f.read().rstrip("\n")
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect(("127.0.0.1", 9))
            box["sock"] = s

        t = threading.Thread(target=work, name="cs-worker")
        t.start()
        t.join()
        with box["sock"] as s:
            ev, _ = self.wait_for(self.mine(s))
        self.assertEqual(ev.tid, box["tid"])
        self.assertNotEqual(ev.tid, threading.get_native_id())
        self.check_process(ev, tid=box["tid"], comm=box["comm"])

    def test_stats_count_delivered_events(self):
        before = self.session.stats()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("127.0.0.1", 9))
            self.wait_for(self.mine(s))
            self.wait_for(lambda o: o.pid == os.getpid(), kind=connscope.ConnectOutcome)
        after = self.session.stats()
        self.assertGreater(after.events, before.events)
        self.assertGreater(after.outcomes, before.outcomes)
        # lost counts ring records only; the DNS and callback counters are apart.
        self.assertEqual(after.lost, after.lost_ring_connect + after.lost_ring_dns + after.lost_ring_outcome
                         + after.decode_errors)

    def test_backend(self):
        self.assertIn(self.info.name, ("lsm", "fentry", "kprobe", "cgroup", "tracepoint"))
        self.assertTrue(self.info.reason)
        self.assertTrue(self.info.tried)
        chosen = [b for b in self.info.tried if b.name == self.info.name]
        self.assertEqual(len(chosen), 1)
        self.assertTrue(chosen[0].available)
        for b in self.info.tried:
            self.assertEqual(b.available, not b.reason, b)

    def test_fileno_is_pollable(self):
        import selectors
        with selectors.DefaultSelector() as sel:
            sel.register(self.session.fileno(), selectors.EVENT_READ)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect(("127.0.0.1", 9))
                found = []
                end = time.monotonic() + 5
                while not found and time.monotonic() < end:
                    # The fd turns readable within max_latency (5 ms here) of an event.
                    if sel.select(timeout=1.0):
                        found = [e for e in self.session.consume()
                                 if isinstance(e, connscope.SecuritySocketConnect) and self.mine(s)(e)]
            self.assertTrue(found, "the connect never came through select() + consume()")

    def test_callback_exception_is_raised_by_poll(self):
        with connscope.Session(dns=False, exclude_self=False) as session:
            # A failing conversion inside the C callback must surface from poll().
            original = connscope._connect_event
            connscope._connect_event = lambda ev: (_ for _ in ()).throw(RuntimeError("boom"))
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.connect(("127.0.0.1", 9))
                    with self.assertRaisesRegex(RuntimeError, "boom"):
                        end = time.monotonic() + 5
                        while time.monotonic() < end:
                            session.poll(0.05)
            finally:
                connscope._connect_event = original

    def test_outcomes_off(self):
        me = os.getpid()
        with connscope.Session(dns=False, max_latency_ms=5, pids=[me], exclude_self=False,
                               outcomes=False) as session:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
                listener.bind(("127.0.0.1", 0))
                listener.listen(1)
                socket.create_connection(listener.getsockname()).close()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect(("127.0.0.1", 9))
                fd = s.fileno()
            events, end = [], time.monotonic() + 5
            # The UDP connect comes last; past it, an outcome would have come already.
            while not [e for e in events if isinstance(e, connscope.SecuritySocketConnect)
                       and e.type == "SOCK_DGRAM" and e.sockfd == fd] and time.monotonic() < end:
                events += session.poll(0.05)
            events += session.poll(0.2)
            st = session.stats()
        kinds = [type(e).__name__ for e in events]
        self.assertIn("SecuritySocketConnect", kinds)
        self.assertIn("NetTcpConnect", kinds)
        self.assertNotIn("ConnectOutcome", kinds)
        self.assertEqual((st.outcomes, st.lost_ring_outcome), (0, 0))

    def test_closed_session_raises(self):
        session = connscope.Session(dns=False)
        with session:
            pass
        with self.assertRaises(connscope.Error) as cm:
            session.poll(0)
        self.assertEqual(cm.exception.code, -errno.EBADF)


class BothForms(connscope.Session):
    """Each event as (dataclass, the library's JSON line), both made inside the callback."""

    def _convert_connect(self, ev):
        return (connscope._connect_event(ev.contents),
                connscope._json_text(lambda buf, n: self._lib.connscope_connect_event_json(ev, buf, n),
                                     self._check), ev)

    def _convert_tcp(self, ev):
        return (connscope._tcp_event(ev.contents),
                connscope._json_text(lambda buf, n: self._lib.connscope_tcp_connect_event_json(ev, buf, n),
                                     self._check), ev)

    def _convert_outcome(self, ev):
        return (connscope._outcome_event(ev.contents),
                connscope._json_text(lambda buf, n: self._lib.connscope_outcome_event_json(ev, buf, n),
                                     self._check), ev)


@unittest.skipUnless(ROOT, "needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)")
class JsonAgreementTest(unittest.TestCase):
    """to_dict() of every dataclass is the library's JSON object: the same keys, order and values."""

    def test_dataclasses_are_the_json_contract(self):
        me = os.getpid()
        with BothForms(dns=False, max_latency_ms=5, pids=[me], exclude_self=False) as session:
            with tempfile.TemporaryDirectory() as d:
                for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                    with socket.socket(family, socket.SOCK_STREAM) as listener:
                        listener.bind((host, 0))
                        listener.listen(1)
                        port = listener.getsockname()[1]
                        socket.create_connection((host, port)).close()
                    # The port is free again: refused, an outcome with an errno's name.
                    with socket.socket(family, socket.SOCK_STREAM) as s:
                        self.assertNotEqual(s.connect_ex((host, port)), 0)
                    with socket.socket(family, socket.SOCK_DGRAM) as s:
                        s.connect((host, 9))
                path = os.path.join(d, "s.sock")
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
                    listener.bind(path)
                    listener.listen(1)
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                        s.connect(path)

            def outcomes():
                return [p[0] for p in pairs if isinstance(p[0], connscope.ConnectOutcome)]

            # 2 x (2 TCP + 1 UDP) connects over IP, each with its outcome.
            pairs, end = [], time.monotonic() + 5
            while len(outcomes()) < 6 and time.monotonic() < end:
                pairs += session.poll(0.05)
            pairs += session.poll(0.1)  # the UNIX connect's, where the backend sees it
            self.assertGreaterEqual(len(pairs), 14, pairs)
            self.assertEqual({type(p[0]) for p in pairs},
                             {connscope.SecuritySocketConnect, connscope.NetTcpConnect,
                              connscope.ConnectOutcome})
            self.assertTrue({"established", "refused", "connected"} <= {o.outcome for o in outcomes()},
                            outcomes())
            self.assertIn("ECONNREFUSED", {o.error for o in outcomes()})
            for ev, text, _ in pairs:
                with self.subTest(event=text):
                    self.assertEqual(list(ev.to_dict().items()), list(json.loads(text).items()))
            # Every event has its own number, in delivery order.
            seqs = [p[0].seq for p in pairs]
            self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))))
            # Outside its callback an event is refused, not read.
            _, _, stale = pairs[0]
            rc = session._lib.connscope_connect_event_json(stale, None, 0)
            self.assertEqual(rc, -errno.EINVAL)


@unittest.skipUnless(ROOT, "needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)")
class LogTest(unittest.TestCase):
    """The log channel: Session(log=..., log_level=...) through connscope_opts.log."""

    def open(self, **kwargs):
        messages = []
        session = connscope.Session(dns=False, log=lambda level, text: messages.append((level, text)),
                                    **kwargs)
        self.addCleanup(session.close)
        return session, messages

    def test_info_tells_the_backend_chosen(self):
        session, messages = self.open(log_level=connscope.LogLevel.INFO)
        name = session.backend().name
        self.assertTrue(messages, "nothing was logged at info")
        for level, text in messages:
            self.assertIsInstance(level, connscope.LogLevel)
            self.assertLessEqual(level, connscope.LogLevel.INFO, text)
            self.assertIsInstance(text, str)
            self.assertTrue(text)
            self.assertNotIn("\n", text)
        info = [text for level, text in messages if level == connscope.LogLevel.INFO]
        self.assertTrue([t for t in info if t.startswith(f"backend {name}: ")], info)

    def test_level_bounds_what_is_given(self):
        _, messages = self.open(log_level=connscope.LogLevel.ERROR)
        self.assertEqual([m for m in messages if m[0] > connscope.LogLevel.ERROR], [])
        _, messages = self.open(log_level=int(connscope.LogLevel.WARNING))  # plain ints too
        self.assertEqual([m for m in messages if m[0] > connscope.LogLevel.WARNING], [])

    def test_silent_by_default(self):
        # Without log= nothing reaches stderr, libbpf's probing failures included.
        code = ("import connscope\n"
                "with connscope.Session(dns=False) as s:\n"
                "    s.poll(0)\n")
        out = subprocess.run([sys.executable, "-c", code], env=os.environ, capture_output=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual((out.stdout, out.stderr), (b"", b""))

    def test_exception_in_log_is_raised_by_the_call(self):
        def log(level, text):
            raise RuntimeError(f"log failed at {text!r}")

        with self.assertRaisesRegex(RuntimeError, "log failed"):
            connscope.Session(dns=False, log=log, log_level=connscope.LogLevel.DEBUG)
        # The half-made session was freed: a new one starts as usual.
        with connscope.Session(dns=False) as session:
            self.assertTrue(session.backend().name)


class ErrorTest(unittest.TestCase):
    """Bad options fail before anything is attached, so these need no root."""

    def test_unknown_backend(self):
        with self.assertRaises(connscope.Error) as cm:
            connscope.Session(backend="nope")
        self.assertEqual(cm.exception.code, -errno.EINVAL)
        self.assertIn("nope", str(cm.exception))
        self.assertIn("cgroup", str(cm.exception), "the message should list the valid backends")

    def test_too_many_dns_ports(self):
        with self.assertRaises(connscope.Error) as cm:
            connscope.Session(dns_ports=list(range(1, 40)))
        self.assertEqual(cm.exception.code, -errno.EINVAL)

    def test_liveness(self):
        # The start-up proof ran (its canaries are counted, never delivered),
        # and a liveness round passes while polling.
        with connscope.Session(dns=False, exclude_self=False, liveness_interval_ms=1000,
                               startup_timeout_ms=3000) as s:
            self.assertGreaterEqual(s.stats().canaries_sent, 1)
            events = []
            end = time.monotonic() + 2.3
            while time.monotonic() < end:
                events += s.poll(0.05)
            st = s.stats()
            self.assertGreaterEqual(st.canaries_sent, 3)
            self.assertEqual((st.canaries_missed, st.links_detached, st.reattachments), (0, 0, 0))
            self.assertEqual([e for e in events if isinstance(e, connscope.HealthEvent)], [])
            mine = [e for e in events if getattr(e, "pid", None) == os.getpid()]
            self.assertEqual(mine, [], "a canary (or its outcome) reached the caller")
            self.assertIn('"canaries_sent":', s.stats_json())
        with self.assertRaises(connscope.Error) as cm:
            connscope.Session(liveness_interval_ms=500)
        self.assertEqual(cm.exception.code, -errno.EINVAL)
        self.assertIn("liveness_interval 500 ms", str(cm.exception))
        connscope.Session(dns=False, liveness_interval_ms=None).close()  # off is allowed

    def test_bad_log_level(self):
        with self.assertRaises(connscope.Error) as cm:
            connscope.Session(log=lambda level, text: None, log_level=9)
        self.assertEqual(cm.exception.code, -errno.EINVAL)
        self.assertIn("log_level", str(cm.exception))

    def test_unknown_address(self):
        a = connscope._ffi.Address(size=ctypes.sizeof(connscope._ffi.Address), kind=connscope._ffi.ADDR_UNKNOWN,
                                   family=0, addrlen=16, family_name=b"AF_UNSPEC")
        self.assertEqual(connscope._address(a), {"family": "AF_UNSPEC", "addrlen": 16})

    def test_outcome_conversion(self):
        # No result known (io_uring), no local address: None for both.
        ffi = connscope._ffi
        ev = ffi.OutcomeEvent(size=ctypes.sizeof(ffi.OutcomeEvent), pid=7, tid=8, connect_id=5, sequence=9,
                              timestamp_ns=10, duration_ns=11, via=ffi.VIA_IO_URING, via_name=b"io_uring",
                              result_known=0, result=0, lsm=ffi.LSM_UNKNOWN, lsm_name=b"unknown",
                              tcp=ffi.TCP_TIMED_OUT, tcp_error=errno.ETIMEDOUT, tcp_name=b"timed_out",
                              outcome_name=b"timed_out", socket_cookie=12)
        out = connscope._outcome_event(ev)
        self.assertIs(connscope.OutcomeEvent, connscope.ConnectOutcome)
        self.assertEqual(list(out.to_dict().items()), [
            ("event", "connect_outcome"), ("schema", 1), ("seq", 9), ("connect_id", 5), ("timestamp", 10),
            ("pid", 7), ("tid", 8), ("via", "io_uring"), ("outcome", "timed_out"), ("result", None),
            ("error", ""), ("lsm", "unknown"), ("lsm_error", 0), ("tcp", "timed_out"),
            ("tcp_error", errno.ETIMEDOUT), ("duration_ns", 11), ("local_addr", None), ("socket_cookie", 12)])
        self.assertEqual((out.sequence, out.timestamp_ns), (9, 10))
        # A known failure: the errno's name as glibc gives it (EOPNOTSUPP, not Python's ENOTSUP).
        ev.result_known, ev.result = 1, -errno.EOPNOTSUPP
        self.assertEqual((connscope._outcome_event(ev).result, connscope._outcome_event(ev).error),
                         (-errno.EOPNOTSUPP, "EOPNOTSUPP"))
        self.assertEqual((connscope.TCP_TIMED_OUT, connscope.LSM_DENIED, connscope.OUTCOMES_OFF), (3, 2, 2))

    def test_log_levels(self):
        self.assertEqual([int(x) for x in connscope.LogLevel], [1, 2, 3, 4])
        self.assertEqual([x.name for x in connscope.LogLevel], ["ERROR", "WARNING", "INFO", "DEBUG"])

    def test_library_version(self):
        self.assertRegex(connscope.library_version(), r"^\d+\.\d+\.\d+$")


if __name__ == "__main__":
    if not ROOT:
        print("SKIP: tests/python/test_session.py needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)")
        sys.exit(77)
    unittest.main(verbosity=2)
