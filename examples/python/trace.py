#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""Prints every connect() on the host, live, through the connscope Python module.

    sudo CONNSCOPE_LIBRARY=/path/to/libconnscope.so python3 trace.py [--json] [-b cgroup] [-t 10]
        [-p PID]... [-f inet|inet6|unix]... [--port PORT|FIRST-LAST]...

Its own connects are not shown (the library leaves the session owner's out).
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import connscope  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-b", "--backend", default="auto", help="auto, or a comma list of backends")
    parser.add_argument("-t", "--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--no-dns", action="store_true", help="no DNS capture")
    parser.add_argument("--library", help="path of libconnscope.so")
    parser.add_argument("-p", "--pid", type=int, action="append", help="only this process (repeatable)")
    parser.add_argument("-f", "--family", action="append", choices=["inet", "inet6", "unix"],
                        help="only this address family (repeatable)")
    parser.add_argument("--port", action="append", help="only this remote port or range A-B (repeatable)")
    args = parser.parse_args()

    ports = []
    for p in args.port or []:
        first, _, last = p.partition("-")
        ports.append((int(first), int(last or first)))
    try:
        session = connscope.Session(backend=args.backend, dns=not args.no_dns, library=args.library,
                                    pids=args.pid, families=args.family, ports=ports)
    except connscope.Error as e:
        print(f"trace.py: {e}", file=sys.stderr)
        return 1
    with session:
        info = session.backend()
        print(f"# connscope {connscope.library_version(args.library)}, backend {info.name}: {info.reason}",
              file=sys.stderr)
        end = None if args.seconds is None else time.monotonic() + args.seconds
        try:
            while end is None or time.monotonic() < end:
                for ev in session.poll(0.2):
                    if args.json:
                        print(json.dumps(ev.to_dict()), flush=True)
                    elif isinstance(ev, connscope.SecuritySocketConnect):
                        addr = ev.remote_addr
                        where = addr.get("path", f"{addr.get('ip')}:{addr.get('port')}")
                        print(f"{ev.comm:16} pid={ev.pid} fd={ev.sockfd} {ev.type} "
                              f"{addr['family']} {where}", flush=True)
                    elif isinstance(ev, connscope.NetTcpConnect):
                        names = " ".join(ev.results) or "-"
                        print(f"{ev.comm:16} pid={ev.pid} tcp {ev.dst_ip}:{ev.dst_port} {names}",
                              flush=True)
                    elif isinstance(ev, connscope.ConnectOutcome):
                        local = ev.local_addr
                        where = f" local {local['ip']}:{local['port']}" if local else ""
                        print(f"{'':16} pid={ev.pid} outcome {ev.outcome} result={ev.result}{where}",
                              flush=True)
                    else:  # a health event
                        print(f"# health: {ev.kind}: {ev.message}", file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            pass
        st = session.stats()
        print(f"# {st.events} events, {st.tcp_events} tcp, {st.lost} lost", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
