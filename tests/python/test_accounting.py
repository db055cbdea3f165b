#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""Exact loss accounting from Python: produced = delivered + lost.

A child process makes up to N UDP socket+connect+close to 127.0.0.1 as fast
as it can (for at most a few seconds), traced with a pid filter on that child,
a one-page ring and DNS off, so the ring overflows. The child waits on its
stdin until the session is running and prints how many connects it made.
After it exits and a final drain, the events delivered plus stats().lost
(ring records lost: lost_ring_connect + lost_ring_dns + lost_ring_outcome +
decode_errors) must equal the records produced exactly, and lost must be above
zero. Without outcomes a connect is one record; with them (the default) each
connect record that reached the ring is followed by an outcome record, so
connects delivered + lost_ring_connect = made and outcomes delivered +
lost_ring_outcome = made - lost_ring_connect. Needs root; run as a script it
exits 77 otherwise.
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
    def run_child(self, outcomes):
        """The child's connects under a one-page ring: (made, {kind: delivered}, stats, others)."""
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(N), str(CHILD_SECONDS)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(child.stdout.close)
        try:
            # Past this line the child runs nothing but the connect loop.
            self.assertEqual(child.stdout.readline(), "ready\n")
            session = connscope.Session(dns=False, ring_size=mmap.PAGESIZE, max_latency_ms=1,
                                        pids=[child.pid], outcomes=outcomes)
        except BaseException:
            child.kill()
            child.wait()
            raise
        with session:
            delivered = {connscope.SecuritySocketConnect: 0, connscope.ConnectOutcome: 0}
            others = 0

            def count(events):
                nonlocal others
                for ev in events:
                    if ev.pid == child.pid:
                        delivered[type(ev)] += 1
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
        total = sum(delivered.values())
        print(f"\naccounting (outcomes {'on' if outcomes else 'off'}): child {child.pid} made {made} "
              f"connects in {time.monotonic() - started:.2f} s; delivered {total} + lost "
              f"{st.lost} = {total + st.lost}; {st}", file=sys.stderr)
        return made, delivered, st, others

    def check_common(self, made, delivered, st, others):
        connects = delivered[connscope.SecuritySocketConnect]
        # Every connect record is delivered or lost in the kernel.
        self.assertEqual(connects + st.lost_ring_connect, made)
        self.assertGreater(st.lost, 0, "nothing was lost: the identity was not put to the test")
        self.assertEqual(st.lost, st.lost_ring_connect + st.lost_ring_dns + st.lost_ring_outcome
                         + st.decode_errors)
        # DNS is off and every record is well formed: every loss is a full ring.
        self.assertEqual(st.lost_ring_dns, 0)
        self.assertEqual(st.decode_errors, 0)
        self.assertEqual(others, 0, "the pid filter let other processes through")
        self.assertEqual(st.events, connects)
        self.assertEqual(st.outcomes, delivered[connscope.ConnectOutcome])
        self.assertEqual(st.callback_errors, 0)

    def test_delivered_plus_lost_is_produced(self):
        made, delivered, st, others = self.run_child(outcomes=False)
        # produced = delivered + lost, with lost itself (records only).
        self.assertEqual(sum(delivered.values()) + st.lost, made)
        self.assertEqual((delivered[connscope.ConnectOutcome], st.lost_ring_outcome), (0, 0))
        self.check_common(made, delivered, st, others)

    def test_with_outcomes(self):
        made, delivered, st, others = self.run_child(outcomes=True)
        self.check_common(made, delivered, st, others)
        # An outcome follows each connect record that reached the ring (a UDP
        # connect has no handshake: its outcome is written when connect(2) returns).
        submitted = made - st.lost_ring_connect
        self.assertEqual(delivered[connscope.ConnectOutcome] + st.lost_ring_outcome, submitted)
        # produced = delivered + lost, over both kinds of record.
        self.assertEqual(sum(delivered.values()) + st.lost, made + submitted)


if __name__ == "__main__":
    if not ROOT:
        print("SKIP: tests/python/test_accounting.py needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)")
        sys.exit(77)
    unittest.main(verbosity=2)
