# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""python3 -m connscope: every connect() on the host, as `connscope-trace --json` prints it.

The JSON lines are the library's own (connscope_connect_event_json,
connscope_tcp_connect_event_json, connscope_outcome_event_json and
connscope_session_stats_json), so they
are byte for byte what connscope-trace writes; the status lines go to stderr
as connscope-trace's do. The options are connscope-trace's, less
--list-backends (the C ABI has no probe of its own).
"""

import json
import os
import signal
import sys
import time

from . import Error, LogLevel, Session, _json_text

PROG = "connscope"

USAGE = """\
Usage: python3 -m connscope [OPTIONS]
Shows every connect() on this host, one JSON object per line, exactly as
connscope-trace --json does (needs root).

  --json               accepted for connscope-trace's sake; the output is always JSON
  --duration SECONDS   stop after SECONDS (default: until SIGINT/SIGTERM)
  --backend NAME       auto (default), fentry, lsm, kprobe, cgroup, tracepoint,
                       or a comma-separated preference list
  --ring-size BYTES    ring buffer size: a power-of-two multiple of the page size
  --max-latency-ms MS  longest an event waits before it is printed (default 10)
  --no-dns             do not capture DNS answers (net_tcp_connect results stay empty)
  --no-outcomes        do not follow connects to their outcome (no connect_outcome)
  --dns-port N         take DNS answers from port N (repeatable; default 53)
  --cgroup-root PATH   attach the cgroup programs (cgroup backend, DNS capture)
                       to this cgroup v2 directory: watch only that subtree
                       (default: the hierarchy's root, or refuse when only a
                       subtree is reachable)
  --stats-interval S   also write a stats record every S seconds
  --liveness-interval S  prove every S seconds that the hooks still fire and
                       are attached, and repair them (default 10; 0: off)
  --verbose            show the library's diagnostics and libbpf's warnings;
                       twice: also libbpf's debug detail (verifier logs)

Filters (evaluated in the kernel; the same flag again = any of, different
flags = all of):
  --pid PID            connects by this process
  --uid UID            connects by this real user id
  --comm NAME          connects by threads of this name (comm)
  --cgroup PATH        connects from this cgroup v2 directory or below it
  --family F           inet, inet6 or unix
  --port N[-M]         remote port N, or N to M
  -h, --help           show this help

At exit a stats record is written to stdout.
"""


class UsageError(Exception):
    pass


class JsonSession(Session):
    """A Session whose poll() returns the library's JSON lines instead of dataclasses."""

    # Called from inside the callbacks: the only place the library accepts ev.
    def _convert_connect(self, ev):
        return _json_text(lambda buf, n: self._lib.connscope_connect_event_json(ev, buf, n),
                          self._check)

    def _convert_tcp(self, ev):
        return _json_text(lambda buf, n: self._lib.connscope_tcp_connect_event_json(ev, buf, n),
                          self._check)

    def _convert_outcome(self, ev):
        return _json_text(lambda buf, n: self._lib.connscope_outcome_event_json(ev, buf, n),
                          self._check)

    def _convert_health(self, event):
        # The record connscope-trace --json writes (its texts are ASCII).
        return json.dumps(event.to_dict(), separators=(",", ":"))


def number(flag, text, maximum):
    if text is None:
        raise UsageError(f"{flag} needs a value")
    if not (text.isascii() and text.isdigit()) or int(text) > maximum:
        raise UsageError(f"{flag}: '{text}' is not a number from 0 to {maximum}")
    return int(text)


def parse_args(argv):
    """connscope-trace's command line; returns (settings, Session keywords)."""
    a = {"duration": -1.0, "stats_interval": -1.0, "verbose": 0}
    kw = {"pids": [], "uids": [], "comms": [], "cgroups": [], "families": [], "ports": []}
    dns_ports = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        value = argv[i + 1] if i + 1 < len(argv) else None
        i += 1
        if arg in ("-h", "--help"):
            sys.stdout.write(USAGE)
            sys.exit(0)
        elif arg == "--json":
            pass
        elif arg == "--verbose":
            a["verbose"] += 1
        elif arg == "--no-dns":
            kw["dns"] = False
        elif arg == "--no-outcomes":
            kw["outcomes"] = False
        elif arg == "--list-backends":
            raise UsageError("--list-backends: not available from Python; use connscope-trace "
                             "--list-backends")
        elif arg == "--duration":
            a["duration"] = float(number(arg, value, 31536000))
            i += 1
        elif arg == "--ring-size":
            kw["ring_size"] = number(arg, value, 1 << 40)
            i += 1
        elif arg == "--max-latency-ms":
            kw["max_latency_ms"] = number(arg, value, 1000000)
            i += 1
        elif arg == "--liveness-interval":
            seconds = number(arg, value, 3600)
            kw["liveness_interval_ms"] = seconds * 1000 if seconds else None
            i += 1
        elif arg == "--stats-interval":
            a["stats_interval"] = float(number(arg, value, 86400))
            if a["stats_interval"] == 0:
                raise UsageError("--stats-interval: give at least 1 second")
            i += 1
        elif arg == "--pid":
            kw["pids"].append(number(arg, value, 4194304))
            i += 1
        elif arg == "--uid":
            kw["uids"].append(number(arg, value, 4294967294))
            i += 1
        elif arg in ("--comm", "--cgroup"):
            if value is None:
                raise UsageError(f"{arg} needs a value")
            kw[arg[2:] + "s"].append(value)
            i += 1
        elif arg == "--family":
            if value is None:
                raise UsageError("--family needs a value: inet, inet6 or unix")
            if value not in ("inet", "inet6", "unix"):
                raise UsageError(f"--family: '{value}' is not one of inet, inet6, unix")
            kw["families"].append(value)
            i += 1
        elif arg == "--port":
            if value is None:
                raise UsageError("--port needs a value: N or N-M")
            first, dash, last = value.partition("-")
            first = number(arg, first, 65535)
            last = number(arg, last, 65535) if dash else first
            if first > last:
                raise UsageError(f"--port: {value} is an empty range")
            kw["ports"].append((first, last))
            i += 1
        elif arg == "--dns-port":
            dns_ports.append(number(arg, value, 65535))
            i += 1
        elif arg == "--backend":
            if value is None:
                raise UsageError("--backend needs a value")
            kw["backend"] = value
            i += 1
        elif arg == "--cgroup-root":
            if not value:
                raise UsageError("--cgroup-root: give a cgroup v2 directory")
            kw["cgroup_root"] = value
            i += 1
        else:
            raise UsageError(f"unknown option '{arg}'")
    if dns_ports:
        kw["dns_ports"] = dns_ports
    return a, kw


def status(text):
    sys.stderr.write(f"{PROG}: {text}\n")


def log_to_stderr(level, message):
    name = level.name.lower() if isinstance(level, LogLevel) else str(level)
    status(f"{name}: {message}")


def run(args, kw):
    stop = []

    def on_signal(_signum, _frame):
        stop.append(True)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if args["verbose"]:
        kw.update(log=log_to_stderr,
                  log_level=LogLevel.DEBUG if args["verbose"] > 1 else LogLevel.INFO)
    with JsonSession(**kw) as session:
        b = session.backend()
        status(f"watching (backend {b.name}: {b.reason}); cgroup scope: {b.cgroup_scope}")
        for gap in b.gaps:
            status(f"backend {b.name} does not see {gap}")
        status(f"DNS capture {b.dns}")
        sys.stderr.flush()

        def write(lines):
            for line in lines:
                sys.stdout.write(line + "\n")
            sys.stdout.flush()

        start = time.monotonic()
        deadline = start + args["duration"]
        next_stats = start + args["stats_interval"]
        while not stop:
            now = time.monotonic()
            if args["stats_interval"] > 0 and now >= next_stats:
                write([session.stats_json()])
                next_stats += args["stats_interval"]
            wait = 0.1
            if args["duration"] >= 0:
                left = deadline - now
                if left <= 0:
                    break
                wait = min(wait, left)
            write(session.poll(wait))
        write(session.consume())  # what arrived before the stop
        write([session.stats_json()])
    return 0


def main(argv=None):
    try:
        args, kw = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as e:
        sys.stderr.write(f"{PROG}: {e}\nTry 'python3 -m connscope --help'.\n")
        return 1
    try:
        return run(args, kw)
    except Error as e:
        status(str(e))
        return 1
    except BrokenPipeError:
        # The reader went away (| head): stop quietly, as connscope-trace does on SIGPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
