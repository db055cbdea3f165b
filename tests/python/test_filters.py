#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""Filters from Python: pid, family and port filters, set_filters() while running.

Real connects against the real kernel. A connect the filter must drop is
followed by one it must report (the sentinel); the ring keeps order, so once
the sentinel is delivered the dropped one would have been too. The argument
checks need no root; the rest do (exits 77 when run as a non-root script).
"""

import errno
import os
import socket
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "python"))
import connscope  # noqa: E402

ROOT = os.geteuid() == 0


def udp_connect(family, port):
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((host, port))


def child_connect(family, port):
    """The same from another process; returns its pid."""
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    code = ("import socket, sys; s = socket.socket(int(sys.argv[1]), socket.SOCK_DGRAM); "
            "s.connect((sys.argv[2], int(sys.argv[3])))")
    with subprocess.Popen([sys.executable, "-c", code, str(int(family)), host, str(port)]) as p:
        if p.wait() != 0:
            raise RuntimeError(f"the child's connect to {host} port {port} failed")
    return p.pid


class Recorder:
    """Every connect event a session delivered."""

    def __init__(self, session):
        self.session = session
        self.events = []

    def to(self, port, pid=None):
        return [e for e in self.events
                if e.remote_addr.get("port") == port and (pid is None or e.pid == pid)]

    def wait(self, port, pid=None, count=1, timeout=5.0):
        end = time.monotonic() + timeout
        while len(self.to(port, pid)) < count and time.monotonic() < end:
            self.events += [e for e in self.session.poll(0.05)
                            if isinstance(e, connscope.SecuritySocketConnect)]
        return len(self.to(port, pid)) >= count


@unittest.skipUnless(ROOT, "needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)")
class FilterTest(unittest.TestCase):
    def session(self, **filters):
        s = connscope.Session(dns=False, max_latency_ms=5, **filters)
        self.addCleanup(s.close)
        return s, Recorder(s)

    def test_pid_filter(self):
        me = os.getpid()
        _, rec = self.session(pids=[me], exclude_self=False)
        child = child_connect(socket.AF_INET, 41001)  # another pid: dropped
        udp_connect(socket.AF_INET, 41002)            # ours: the sentinel
        self.assertTrue(rec.wait(41002, pid=me), "our own connect was not reported")
        self.assertEqual(rec.to(41001), [], f"child {child}'s connect came through the pid filter")
        self.assertEqual({e.pid for e in rec.events}, {me})

    def test_pid_filter_on_another_process(self):
        # Our pid is not in the list: only the listed process is reported.
        _, rec = self.session(pids=[1], exclude_self=False)
        udp_connect(socket.AF_INET, 41003)
        rec.wait(41003, timeout=0.3)  # 60 times max_latency: it would have come
        self.assertEqual(rec.to(41003), [])
        self.assertTrue(all(e.pid == 1 for e in rec.events), rec.events)

    def test_family_filter(self):
        me = os.getpid()
        _, rec = self.session(families=["inet6"], exclude_self=False)
        udp_connect(socket.AF_INET, 41011)   # dropped
        udp_connect(socket.AF_INET6, 41012)  # the sentinel
        self.assertTrue(rec.wait(41012, pid=me))
        self.assertEqual(rec.to(41011), [])
        self.assertEqual({e.remote_addr["family"] for e in rec.events}, {"AF_INET6"})

    def test_family_filter_takes_numbers(self):
        me = os.getpid()
        _, rec = self.session(families=[socket.AF_INET, "unix"], exclude_self=False)
        udp_connect(socket.AF_INET6, 41013)  # dropped
        udp_connect(socket.AF_INET, 41014)   # the sentinel
        self.assertTrue(rec.wait(41014, pid=me))
        self.assertEqual(rec.to(41013), [])

    def test_port_filter(self):
        me = os.getpid()
        _, rec = self.session(ports=[(41020, 41029), 41040], exclude_self=False)
        udp_connect(socket.AF_INET, 41019)   # below: dropped
        udp_connect(socket.AF_INET6, 41030)  # above: dropped
        udp_connect(socket.AF_INET, 41020)   # both ends are inside
        udp_connect(socket.AF_INET6, 41029)
        udp_connect(socket.AF_INET, 41040)   # a single port
        self.assertTrue(rec.wait(41040, pid=me))
        self.assertEqual(len(rec.to(41020, pid=me)), 1)
        self.assertEqual(len(rec.to(41029, pid=me)), 1)
        self.assertEqual(rec.to(41019) + rec.to(41030), [])
        for e in rec.events:
            port = e.remote_addr.get("port")
            self.assertTrue(port == 41040 or 41020 <= port <= 41029, e)

    def test_exclude_self_is_the_default(self):
        _, rec = self.session()
        udp_connect(socket.AF_INET, 41031)          # ours: dropped
        child = child_connect(socket.AF_INET, 41032)  # the sentinel
        self.assertTrue(rec.wait(41032, pid=child))
        self.assertEqual(rec.to(41031), [])

    def test_set_filters_while_running(self):
        me = os.getpid()
        session, rec = self.session(exclude_self=False)
        # Before the change: every connect, ours included.
        udp_connect(socket.AF_INET, 41041)
        self.assertTrue(rec.wait(41041, pid=me))

        # After it: only port 41050.
        session.set_filters(ports=[41050], exclude_self=False)
        udp_connect(socket.AF_INET, 41042)
        udp_connect(socket.AF_INET, 41050)
        self.assertTrue(rec.wait(41050, pid=me))
        self.assertEqual(rec.to(41042), [])

        # A bad set is refused whole; the old one stays in force.
        with self.assertRaises(connscope.Error) as cm:
            session.set_filters(families=[99], ports=[41043], exclude_self=False)
        self.assertEqual(cm.exception.code, -errno.EINVAL)
        self.assertIn("99", str(cm.exception))
        udp_connect(socket.AF_INET, 41043)
        udp_connect(socket.AF_INET, 41050)
        self.assertTrue(rec.wait(41050, pid=me, count=2))
        self.assertEqual(rec.to(41043), [])

        # No keywords: the defaults (any connect but our own).
        session.set_filters()
        udp_connect(socket.AF_INET, 41044)            # ours: dropped
        child = child_connect(socket.AF_INET, 41045)  # the sentinel
        self.assertTrue(rec.wait(41045, pid=child))
        self.assertEqual(rec.to(41044), [])

    def test_bad_filters_fail_at_start(self):
        with self.assertRaises(connscope.Error) as cm:
            connscope.Session(dns=False, comms=["a-name-longer-than-15"])
        self.assertEqual(cm.exception.code, -errno.EINVAL)
        with self.assertRaises(connscope.Error) as cm:
            connscope.Session(dns=False, cgroups=["/no/such/cgroup/here"])
        self.assertEqual(cm.exception.code, -errno.ENOENT)


class FilterArgumentTest(unittest.TestCase):
    """Arguments the module refuses before calling the library (no root needed)."""

    def check_einval(self, **filters):
        with self.assertRaises(connscope.Error) as cm:
            connscope._c_filters(**filters)
        self.assertEqual(cm.exception.code, -errno.EINVAL)

    def test_refused(self):
        self.check_einval(families=["ipx"])
        self.check_einval(ports=[70000])
        self.check_einval(ports=[(10, -1)])
        self.check_einval(pids=[-1])
        self.check_einval(pids=[2 ** 32])
        self.check_einval(uids=["0"])
        self.check_einval(comms=[42])

    def test_translation(self):
        f = connscope._c_filters(pids=7, uids=[0, 1000], comms="curl", cgroups=["/a", b"b"],
                                 families=["inet", "AF_INET6", socket.AF_UNIX],
                                 ports=[53, (8000, 8080)], exclude_self=False)
        self.assertEqual(f.sz, 112)
        self.assertEqual([f.pids[i] for i in range(f.pid_count)], [7])
        self.assertEqual([f.uids[i] for i in range(f.uid_count)], [0, 1000])
        self.assertEqual([f.comms[i] for i in range(f.comm_count)], [b"curl"])
        self.assertEqual([f.cgroups[i] for i in range(f.cgroup_count)], [b"/a", b"b"])
        self.assertEqual([f.families[i] for i in range(f.family_count)], [2, 10, 1])
        self.assertEqual([(f.ports[i].first, f.ports[i].last) for i in range(f.port_count)],
                         [(53, 53), (8000, 8080)])
        self.assertEqual(f.exclude_self, connscope._ffi.SELF_INCLUDE)
        empty = connscope._c_filters()
        self.assertEqual((empty.pid_count, empty.port_count, bool(empty.pids)), (0, 0, False))
        self.assertEqual(empty.exclude_self, connscope._ffi.SELF_EXCLUDE)

    def test_stats_has_every_loss_field(self):
        # connscope::Stats, field for field (include/connscope/session.hpp).
        want = ["events", "tcp_events", "dns_messages", "lost", "lost_ring_connect", "lost_ring_dns",
                "decode_errors", "dns_truncated", "dns_malformed", "dns_tcp_dropped_bytes",
                "dns_names_evicted", "callback_errors", "canaries_sent", "canaries_missed",
                "links_detached", "reattachments", "unwatched_ns", "outcomes", "lost_ring_outcome",
                "dns_dropped_reserve", "dns_evicted_budget", "dns_evicted_global", "dns_expired",
                "dns_cache_entries", "dns_cache_bytes", "dns_cache_bytes_max", "dns_cache_bytes_allocated",
                "dns_cache_budget_groups"]
        self.assertEqual(list(connscope.Stats.__dataclass_fields__), want)
        self.assertEqual([name for name, _ in connscope._ffi.Stats._fields_[1:]], want)


if __name__ == "__main__":
    if not ROOT:
        print("SKIP: tests/python/test_filters.py needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)")
        sys.exit(77)
    unittest.main(verbosity=2)
