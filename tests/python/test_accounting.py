#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""Exact loss accounting from Python: produced = delivered + lost.

A child process makes up to N UDP socket+connect+close to 127.0.0.1 as fast
as it can (for at most a few seconds), traced with a pid filter on that child,
a one-page ring and DNS off, so the ring overflows. The child waits on its
stdin until the session is running and prints how many connects it made.
After it exits and a final drain, the events delivered plus stats().lost
(ring records lost: lost_ring_connect + lost_ring_dns + decode_errors) must
equal that count exactly, and lost must be above zero. Needs root; run as a
script it exits 77 otherwise.
"""

import mmap
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "python"))
import connscope  # noqa: E402

ROOT = os.geteuid() == 0
N = 200000
CHILD_SECONDS = 5.0

CHILD = r"""
import socket, sys, time
n, seconds = int(sys.argv[1]), float(sys.argv[2])
sys.stdout.write("ready\n")
sys.stdout.flush()
if sys.stdin.read(1) != "g":
    sys.exit(3)
made, end, addr = 0, time.monotonic() + seconds, ("127.0.0.1", 9)
while made < n and (made & 1023 or time.monotonic() < end):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(addr)
    s.close()
    made += 1
sys.stdout.write(f"{made}\n")
"""


@unittest.skipUnless(ROOT, "needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)")
class AccountingTest(unittest.TestCase):
    def test_delivered_plus_lost_is_produced(self):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(N), str(CHILD_SECONDS)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(child.stdout.close)
        try:
            # Past this line the child runs nothing but the connect loop.
            self.assertEqual(child.stdout.readline(), "ready\n")
            session = connscope.Session(dns=False, ring_size=mmap.PAGESIZE, max_latency_ms=1,
                                        pids=[child.pid])
        except BaseException:
            child.kill()
            child.wait()
            raise
        with session:
            delivered = others = 0

            def count(events):
                nonlocal delivered, others
                for ev in events:
                    if ev.pid == child.pid:
                        delivered += 1
                    else:
                        others += 1

            started = time.monotonic()
            child.stdin.write("g")
            child.stdin.close()
            while child.poll() is None:
                count(session.poll(0.01))
            made = int(child.stdout.read())
            self.assertEqual(child.returncode, 0)
            # The final drain: every record the child produced is in the ring now.
            while True:
                events = session.consume()
                if not events:
                    break
                count(events)
            st = session.stats()
        print(f"\naccounting: child {child.pid} made {made} connects in "
              f"{time.monotonic() - started:.2f} s; delivered {delivered} + lost "
              f"{st.lost} = {delivered + st.lost}; {st}", file=sys.stderr)
        # produced = delivered + lost, with lost itself (records only).
        self.assertEqual(delivered + st.lost, made)
        self.assertGreater(st.lost, 0, "nothing was lost: the identity was not put to the test")
        self.assertEqual(st.lost, st.lost_ring_connect + st.lost_ring_dns + st.decode_errors)
        # DNS is off and every record is well formed: every loss is a full ring.
        self.assertEqual(st.lost_ring_dns, 0)
        self.assertEqual(st.decode_errors, 0)
        self.assertEqual(others, 0, "the pid filter let other processes through")
        self.assertEqual(st.events, delivered)
        self.assertEqual(st.callback_errors, 0)


if __name__ == "__main__":
    if not ROOT:
        print("SKIP: tests/python/test_accounting.py needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)")
        sys.exit(77)
    unittest.main(verbosity=2)
