# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""Watch every connect() on a Linux host, from Python (ctypes over libconnscope).

    import connscope

    with connscope.Session() as session:
        for ev in session:            # polls forever
            if isinstance(ev, connscope.SecuritySocketConnect):
                print(ev.event, ev.pid, ev.comm, ev.remote_addr)
            elif isinstance(ev, connscope.ConnectOutcome):
                print(ev.event, ev.pid, ev.outcome, ev.error)

Events are SecuritySocketConnect, NetTcpConnect and ConnectOutcome (what
became of each connect: established, refused, ...) dataclasses whose fields
have the names of connscope's JSON output; connect_id joins a connect with its
NetTcpConnect and ConnectOutcome. HealthEvent records among them say
when the session found its own hooks not firing or detached, and repaired them. Failures raise connscope.Error,
whose .code is the library's negative error code and whose message is the
library's own (what failed, why, and what to do). Diagnostics go to the
log= callable of a Session, at the levels of connscope.LogLevel; without one
the library is silent.

The library is, in this order: the library= argument, the CONNSCOPE_LIBRARY
environment variable, the libconnscope installed with this package (when the
package was installed by meson), ctypes.util.find_library("connscope").
`python3 -m connscope` prints what `connscope-trace --json` prints.
Standard library only. Needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN).
"""

import ctypes
import enum as _enum
import errno as _errno
import os as _os
import socket as _socket
from dataclasses import asdict, dataclass, field
from typing import Callable, List, Optional, Union

from . import _ffi
from ._ffi import (EBACKEND, ECALLBACK, ECGROUPSUBTREE, EINTERNAL, EMOVED, ENOBTF,  # noqa: F401
                   ENOCGROUP2, ENOTFIRING)
# The C values behind ConnectOutcome's lsm and tcp names, and behind
# Session(outcomes=) (connscope_opts::outcomes_mode).
from ._ffi import (LSM_ALLOWED, LSM_DENIED, LSM_UNKNOWN, OUTCOMES_DEFAULT, OUTCOMES_OFF,  # noqa: F401
                   OUTCOMES_ON, TCP_CLOSED, TCP_ESTABLISHED, TCP_NONE, TCP_REFUSED, TCP_TIMED_OUT,
                   TCP_UNREACHABLE)

__all__ = [
    "Session", "Error", "SecuritySocketConnect", "NetTcpConnect", "ConnectOutcome", "OutcomeEvent",
    "HealthEvent", "Stats", "BackendInfo",
    "BackendStatus", "LogLevel", "library_version", "EBACKEND", "ENOCGROUP2", "ENOBTF",
    "EMOVED", "ECALLBACK", "EINTERNAL", "ENOTFIRING", "ECGROUPSUBTREE",
    "OUTCOMES_DEFAULT", "OUTCOMES_ON", "OUTCOMES_OFF", "LSM_UNKNOWN", "LSM_ALLOWED", "LSM_DENIED",
    "TCP_NONE", "TCP_ESTABLISHED", "TCP_REFUSED", "TCP_TIMED_OUT", "TCP_UNREACHABLE", "TCP_CLOSED",
]

__version__ = "0.5.0"

# The oldest library whose C ABI this module declares (0.2 moved the process
# and address out of the events, behind pointers).
_ABI_VERSION = (0, 2)
# The first library with outcomes (connscope_callbacks::on_outcome,
# connscope_opts::outcomes_mode): an older one refuses those fields set.
_OUTCOMES_VERSION = (0, 4)
# The "schema" every JSON record carries (connscope::json_schema_version).
_JSON_SCHEMA = 1

_libs = {}


def _lib(path=None):
    key = _ffi.find_library(path)
    if key not in _libs:
        try:
            lib = _ffi.load(key)
        except (OSError, AttributeError) as e:
            raise Error(-_errno.ENOENT,
                        f"cannot load libconnscope ({key}): {e}; pass library=, set "
                        "CONNSCOPE_LIBRARY to the path of libconnscope.so.0, or install it") from e
        version = lib.connscope_version().decode()
        if _version_tuple(version) < _ABI_VERSION:
            raise Error(-_errno.ENOTSUP,
                        f"{key} is libconnscope {version}; this module needs "
                        f"{_ABI_VERSION[0]}.{_ABI_VERSION[1]} or later")
        _libs[key] = lib
    return _libs[key]


def _version_tuple(version: str):
    return tuple(int(x) for x in version.split(".")[:2])


def library_version(library=None) -> str:
    """The version of the loaded libconnscope ("MAJOR.MINOR.PATCH")."""
    return _lib(library).connscope_version().decode()


class Error(Exception):
    """A failure reported by libconnscope.

    code is the library's return value: a negative errno (-errno.EINVAL,
    -errno.EPERM, ...) or a negated project code (-connscope.EBACKEND, ...).
    str(error) is the library's full message.
    """

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self):
        return f"connscope.Error({self.code}, {self.message!r})"


class LogLevel(_enum.IntEnum):
    """How much a log callable is told, from the least to the most (CONNSCOPE_LOG_*)."""
    ERROR = _ffi.LOG_ERROR      # something failed that the caller should know of
    WARNING = _ffi.LOG_WARNING  # a capability is missing or degraded; the library's default
    INFO = _ffi.LOG_INFO        # what was chosen and why; each backend's verdict
    DEBUG = _ffi.LOG_DEBUG      # libbpf's and the kernel's own detail (verifier logs)


def _text(b: Optional[bytes]) -> str:
    return b.decode("utf-8", "backslashreplace") if b else ""


def _json_text(write, check) -> str:
    """The whole text of a connscope_*_json call (snprintf-like: it returns the full length)."""
    buf = ctypes.create_string_buffer(1024)
    n = check(write(buf, len(buf)))
    if n >= len(buf):
        buf = ctypes.create_string_buffer(n + 1)
        n = check(write(buf, len(buf)))
    return buf.raw[:n].decode("utf-8", "backslashreplace")


class _Record:
    """The C and C++ names of two JSON fields every event has."""

    @property
    def sequence(self) -> int:
        """seq: the session's number for this event, one more than the event before it."""
        return self.seq

    @property
    def timestamp_ns(self) -> int:
        """timestamp, in ns since the Unix epoch."""
        return self.timestamp


# seq and connect_id (0.4) are keyword-only with a default, so the positional
# arguments are those of 0.3; asdict() still gives them in the JSON's order.
@dataclass(frozen=True)
class SecuritySocketConnect(_Record):
    """Every connect attempt (the kernel's security_socket_connect)."""
    event: str = field(default="security_socket_connect", init=False)  # as in the JSON contract
    schema: int = field(default=_JSON_SCHEMA, init=False)  # the JSON contract's version
    seq: int = field(default=0, kw_only=True)         # the session's number for this event (a gap: a loss)
    connect_id: int = field(default=0, kw_only=True)  # joins it with its NetTcpConnect and ConnectOutcome
    timestamp: int      # ns since the Unix epoch
    pid: int
    tid: int
    ppid: int
    uid: int
    gid: int
    comm: str
    cgroup_id: int
    # The container's id (64 hex digits) or "": keyword-only like seq, so the
    # positional arguments stay those of 0.3.
    container_id: str = field(default="", kw_only=True)
    mnt_ns: int
    net_ns: int
    pid_ns: int
    user_ns: int
    uts_ns: int
    ipc_ns: int
    cgroup_ns: int
    sockfd: int         # -1 when no system call names it (io_uring, socketcall)
    type: str           # "SOCK_STREAM", "SOCK_DGRAM", ...
    remote_addr: dict   # {"family": "AF_INET", "ip": ..., "port": ...} or {"family": "AF_UNIX", "path": ...}
    toctou: bool
    via: str            # how it was asked for: "connect", "fastopen", "io_uring" or "unknown"
    # An LSM ahead of the backend's hook refused it: reported when connect(2)
    # returned, from the caller's arguments (toctou is then true as well).
    late: bool = False

    def to_dict(self) -> dict:
        """The event as the JSON contract's object."""
        return asdict(self)


@dataclass(frozen=True)
class NetTcpConnect(_Record):
    """A TCP connect over IPv4/IPv6 with the DNS names of its destination."""
    event: str = field(default="net_tcp_connect", init=False)
    schema: int = field(default=_JSON_SCHEMA, init=False)
    seq: int = field(default=0, kw_only=True)         # this event's own number
    connect_id: int = field(default=0, kw_only=True)  # its SecuritySocketConnect's
    timestamp: int
    pid: int
    tid: int
    ppid: int
    uid: int
    gid: int
    comm: str
    cgroup_id: int
    # The container's id (64 hex digits) or "": keyword-only like seq, so the
    # positional arguments stay those of 0.3.
    container_id: str = field(default="", kw_only=True)
    mnt_ns: int
    net_ns: int
    pid_ns: int
    user_ns: int
    uts_ns: int
    ipc_ns: int
    cgroup_ns: int
    sockfd: int
    dst_ip: str
    dst_port: int
    results: List[str]  # names that resolved to dst_ip, most relevant first
    via: str            # as SecuritySocketConnect.via

    def to_dict(self) -> dict:
        """The event as the JSON contract's object."""
        return asdict(self)


@dataclass(frozen=True)
class ConnectOutcome(_Record):
    """What became of a connect, after its SecuritySocketConnect (connect_id joins them).

    Delivered once its last part is known: when the system call returned
    (UDP, UNIX, a connect that failed at once) or when the TCP handshake
    ended, whichever is later. Session(outcomes=False) turns them off.
    """
    event: str = field(default="connect_outcome", init=False)
    schema: int = field(default=_JSON_SCHEMA, init=False)
    seq: int            # this event's own number
    connect_id: int     # the SecuritySocketConnect's
    timestamp: int      # when the outcome was known (handshake end or return), ns since the Unix epoch
    pid: int
    tid: int
    via: str            # as SecuritySocketConnect.via
    # "established", "refused", "timed_out", "unreachable", "closed" (TCP),
    # "denied" (an LSM refused), "connected" (UDP, UNIX), "failed", "unknown"
    outcome: str
    result: Optional[int]  # the system call's return: 0, or -errno (-EINPROGRESS); None: not known (io_uring)
    error: str          # the errno's name when result is negative ("ECONNREFUSED"), else ""
    lsm: str            # "allowed", "denied" or "unknown"
    lsm_error: int      # when denied: the errno the LSM gave
    tcp: str            # "none", "established", "refused", "timed_out", "unreachable" or "closed"
    tcp_error: int      # the socket's errno when the handshake ended (0: none)
    duration_ns: int    # from the attempt to the handshake's end (TCP) or the return
    local_addr: Optional[dict]  # the address the socket was bound to, as remote_addr; None when not known
    socket_cookie: int  # the socket's SO_COOKIE; 0 when the kernel gave it none yet

    def to_dict(self) -> dict:
        """The event as the JSON contract's object."""
        return asdict(self)


# The name the C ABI gives it (struct connscope_outcome_event).
OutcomeEvent = ConnectOutcome


@dataclass(frozen=True)
class HealthEvent(_Record):
    """The session's watch over its own hooks: what went missing and what it did."""
    event: str = field(default="health", init=False)
    schema: int = field(default=_JSON_SCHEMA, init=False)
    seq: int = field(default=0, kw_only=True)  # as SecuritySocketConnect.seq
    kind: str       # "canary_missed", "link_detached", "reattached" or "reattach_failed"
    what: str       # the canary or the link it concerns
    message: str    # what went missing, since when, and what the session did about it
    timestamp: int  # when it was found, ns since the Unix epoch

    def to_dict(self) -> dict:
        """The record as connscope-trace --json writes it."""
        return asdict(self)


Event = Union[SecuritySocketConnect, NetTcpConnect, ConnectOutcome, HealthEvent]


@dataclass(frozen=True)
class Stats:
    """Counters since the session started, each in one unit (connscope_stats).

    For ring records produced = delivered + lost holds exactly, with
    lost = lost_ring_connect + lost_ring_dns + lost_ring_outcome + decode_errors.
    """
    events: int                 # connect events delivered
    tcp_events: int             # TCP connect events delivered
    dns_messages: int           # DNS answers parsed and given to the correlator
    lost: int                   # ring records lost: lost_ring_* and decode_errors added up
    lost_ring_connect: int      # connect records dropped in the kernel: the ring was full
    lost_ring_dns: int          # DNS records dropped in the kernel: ring full, or past its DNS limit
    decode_errors: int          # ring records delivered that the decoder could not read
    dns_truncated: int          # DNS records whose payload was longer than dns_payload_max
    dns_malformed: int          # DNS messages the parser rejected
    dns_tcp_dropped_bytes: int  # DNS-over-TCP bytes dropped (out of order or over the bound)
    dns_names_evicted: int      # names the DNS cache evicted to stay in bounds
    callback_errors: int        # callbacks that failed; their events count as delivered
    canaries_sent: int          # canary connects made (one per family per round)
    canaries_missed: int        # canary connects that did not come back within the interval
    links_detached: int         # times a link of the session's was found detached
    reattachments: int          # times the session attached its programs again
    unwatched_ns: int           # ns the session was not sure it was watching (see the C docs)
    # Since 0.4 (0 from an older library). Defaults keep 0.3's constructor.
    outcomes: int = 0           # outcome events delivered
    lost_ring_outcome: int = 0  # outcomes dropped in the kernel: a full ring, or too many handshakes at once
    dns_dropped_reserve: int = 0  # of lost_ring_dns: dropped as the ring was over half full (kept for connects)
    dns_evicted_budget: int = 0   # names a budget group over its share evicted from itself
    dns_evicted_global: int = 0   # names evicted as the DNS cache or its non-host pool was full
    dns_expired: int = 0          # names removed because they expired (not in dns_names_evicted)
    dns_cache_entries: int = 0    # names the DNS cache holds now
    dns_cache_bytes: int = 0      # bytes charged for the names held now; at most dns_cache_bytes_max
    dns_cache_bytes_max: int = 0  # the default DNS cache's memory bound; 0 with a correlator of your own
    dns_cache_bytes_allocated: int = 0  # memory the DNS cache has allocated now, slack included
    dns_cache_budget_groups: int = 0    # budget groups holding names now, the host's included


@dataclass(frozen=True)
class BackendStatus:
    """The verdict on one backend."""
    name: str
    available: bool
    reason: str


@dataclass(frozen=True)
class BackendInfo:
    """The backend in use, why, what it cannot see, and every backend tried."""
    name: str
    reason: str
    dns: str
    gaps: List[str]
    tried: List[BackendStatus]
    #: The directory the cgroup programs are attached to, "(private mount)", or "".
    cgroup_root: str = ""
    #: What they watch and how it was found, one sentence.
    cgroup_scope: str = ""


def _process_fields(p) -> dict:
    # A library older than container_id fills less of the struct: "" then.
    container_id = _text(p.container_id) if _has(p.size, _ffi.Process, "container_id") else ""
    return {
        "timestamp": p.timestamp_ns, "pid": p.pid, "tid": p.tid, "ppid": p.ppid,
        "uid": p.uid, "gid": p.gid, "comm": _text(p.comm), "cgroup_id": p.cgroup_id,
        "container_id": container_id,
        "mnt_ns": p.mnt_ns, "net_ns": p.net_ns, "pid_ns": p.pid_ns, "user_ns": p.user_ns,
        "uts_ns": p.uts_ns, "ipc_ns": p.ipc_ns, "cgroup_ns": p.cgroup_ns,
    }


def _address(a) -> dict:
    family = _text(a.family_name)
    if a.kind == _ffi.ADDR_INET:
        out = {"family": family, "ip": _text(a.ip_text), "port": a.port}
        if a.family == _socket.AF_INET6 and a.scope_id:
            out["scope_id"] = a.scope_id
        return out
    if a.kind == _ffi.ADDR_UNIX:
        name = ctypes.string_at(a.unix_name, a.unix_name_len) if a.unix_name_len else b""
        path = _text(name)
        if a.unix_kind == _ffi.UNIX_ABSTRACT:
            path = "@" + path
        return {"family": family, "path": path}
    return {"family": family, "addrlen": a.addrlen}


def _has(filled: int, struct, name: str) -> bool:
    """Whether the library filled the field name (an older one fills less of the struct)."""
    f = getattr(struct, name)
    return filled >= f.offset + f.size


def _via(ev, struct) -> str:
    # A library older than 0.3 fills less of the struct: it does not say.
    if not _has(ev.size, struct, "via_name") or not ev.via_name:
        return "unknown"
    return _text(ev.via_name)


def _numbers(ev, struct) -> dict:
    """seq and connect_id (0 from a library older than 0.4)."""
    return {"seq": ev.sequence if _has(ev.size, struct, "sequence") else 0,
            "connect_id": ev.connect_id if _has(ev.size, struct, "connect_id") else 0}


def _connect_event(ev) -> SecuritySocketConnect:
    return SecuritySocketConnect(
        **_numbers(ev, _ffi.ConnectEvent),
        **_process_fields(ev.process.contents), sockfd=ev.sockfd, type=_text(ev.type_name),
        remote_addr=_address(ev.remote_addr.contents), toctou=bool(ev.toctou),
        via=_via(ev, _ffi.ConnectEvent),
        late=bool(ev.late) if _has(ev.size, _ffi.ConnectEvent, "late") else False)


def _tcp_event(ev) -> NetTcpConnect:
    results = [_text(ev.results[i]) for i in range(ev.result_count)]
    return NetTcpConnect(
        **_numbers(ev, _ffi.TcpConnectEvent),
        **_process_fields(ev.process.contents), sockfd=ev.sockfd, dst_ip=_text(ev.dst_ip),
        dst_port=ev.dst_port, results=results, via=_via(ev, _ffi.TcpConnectEvent))


_strerrorname = []


def _errno_name(code: int) -> str:
    """"ECONNREFUSED" for 111: glibc's strerrorname_np, the name the library's JSON gives.

    Python's errno.errorcode picks other aliases for a few values (ENOTSUP
    for EOPNOTSUPP), so it is only the fallback; "" for an unknown code.
    """
    if not _strerrorname:
        fn = None
        try:
            fn = ctypes.CDLL(None).strerrorname_np
            fn.restype = ctypes.c_char_p
            fn.argtypes = [ctypes.c_int]
        except (OSError, AttributeError):  # not glibc 2.32 or later
            fn = None
        _strerrorname.append(fn)
    fn = _strerrorname[0]
    if fn is not None:
        return _text(fn(code))
    return _errno.errorcode.get(code, "")


def _outcome_event(ev) -> ConnectOutcome:
    result = ev.result if ev.result_known else None
    return ConnectOutcome(
        seq=ev.sequence, connect_id=ev.connect_id, timestamp=ev.timestamp_ns, pid=ev.pid,
        tid=ev.tid, via=_text(ev.via_name) or "unknown", outcome=_text(ev.outcome_name),
        result=result, error=_errno_name(-result) if result is not None and result < 0 else "",
        lsm=_text(ev.lsm_name), lsm_error=ev.lsm_error, tcp=_text(ev.tcp_name),
        tcp_error=ev.tcp_error, duration_ns=ev.duration_ns,
        local_addr=_address(ev.local_addr.contents) if ev.local_addr else None,
        socket_cookie=ev.socket_cookie)


_FAMILIES = {"inet": _socket.AF_INET, "inet6": _socket.AF_INET6, "unix": _socket.AF_UNIX}


def _invalid(message: str) -> "Error":
    return Error(-_errno.EINVAL, message)


def _as_list(values, scalar_types) -> list:
    if values is None:
        return []
    if isinstance(values, scalar_types):
        return [values]
    return list(values)


def _uint(value, what: str, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise _invalid(f"filter: {what} {value!r} is not an integer from 0 to {(1 << bits) - 1}")
    return value


def _family(value) -> int:
    if isinstance(value, str):
        key = value.lower()
        key = key[3:] if key.startswith("af_") else key
        if key not in _FAMILIES:
            raise _invalid(f"filter: address family {value!r}: use 'inet', 'inet6', 'unix' "
                           "or an AF_* number")
        return _FAMILIES[key]
    return _uint(value, "address family", 16)


def _port_range(value):
    if isinstance(value, tuple) and len(value) == 2:
        first, last = value
    else:
        first = last = value
    return _uint(first, "port", 16), _uint(last, "port", 16)


def _c_strings(values, what: str):
    out = []
    for v in values:
        if isinstance(v, str):
            out.append(v.encode())
        elif isinstance(v, bytes):
            out.append(v)
        elif hasattr(v, "__fspath__"):
            out.append(_os.fsencode(v))
        else:
            raise _invalid(f"filter: {what} {v!r} is not a string")
    return out


def _c_filters(pids=None, uids=None, comms=None, cgroups=None, families=None, ports=None,
               exclude_self=True):
    """A connscope_filters that owns its arrays (ctypes keeps them alive with the struct)."""
    f = _ffi.Filters()
    f.sz = ctypes.sizeof(f)
    f.exclude_self = _ffi.SELF_EXCLUDE if exclude_self else _ffi.SELF_INCLUDE

    def put(name, count_name, ctype, items):
        if items:
            setattr(f, name, (ctype * len(items))(*items))
            setattr(f, count_name, len(items))

    put("pids", "pid_count", ctypes.c_uint32, [_uint(p, "pid", 32) for p in _as_list(pids, int)])
    put("uids", "uid_count", ctypes.c_uint32, [_uint(u, "uid", 32) for u in _as_list(uids, int)])
    put("comms", "comm_count", ctypes.c_char_p, _c_strings(_as_list(comms, (str, bytes)), "comm"))
    put("cgroups", "cgroup_count", ctypes.c_char_p,
        _c_strings(_as_list(cgroups, (str, bytes, _os.PathLike)), "cgroup"))
    put("families", "family_count", ctypes.c_uint16,
        [_family(x) for x in _as_list(families, (str, int))])
    put("ports", "port_count", _ffi.PortRange,
        [_ffi.PortRange(*_port_range(p)) for p in _as_list(ports, int)])
    return f


class Session:
    """A connscope session: BPF programs attached to the kernel, delivering events.

    Session(backend="auto", ring_size=0, max_latency_ms=0, dns=True,
            dns_ports=None, dns_payload_max=0, library=None, *,
            pids=None, uids=None, comms=None, cgroups=None, families=None,
            ports=None, exclude_self=True, log=None, log_level=None,
            startup_timeout_ms=0, liveness_interval_ms=0, outcomes=True)

    backend is "auto", a name ("cgroup"), a comma list or a list of names;
    zero/None settings take the library defaults (4 MiB ring, 10 ms latency,
    DNS on port 53). Use it as a context manager, or call close().
    Not thread-safe: use a session from one thread at a time.

    log is called as log(level, message) with a LogLevel (an IntEnum) and
    one line of text, for every diagnostic up to log_level (a LogLevel or
    int; None: LogLevel.WARNING). It runs inside the calls that make the
    library work (Session(), set_filters()), on their thread; an exception
    it raises is raised again by that call once the library has returned.
    Without log the library is silent.

    Session() returns once a connect of its own came back through the ring
    (within startup_timeout_ms; 0: 5 s), else raises Error ENOTFIRING. Every
    liveness_interval_ms (0: 10 s; None: off) it proves it again and checks
    its links; what it finds and repairs comes out of poll() as HealthEvent.

    cgroup_root: the cgroup v2 directory the cgroup programs (the cgroup
    backend, the DNS capture) attach to. None: the hierarchy's root, found
    at a mount, through /proc/1/root, or by a private mount on a cgroup
    v1-only host; Error ECGROUPSUBTREE when only a subtree is reachable (a
    container with its own cgroup namespace). A path: watch that subtree on
    purpose. backend().cgroup_scope says what is watched.

    outcomes=True (the default) follows each connect to its end: poll()
    returns a ConnectOutcome after its SecuritySocketConnect (the same
    connect_id), and connects an LSM refused before the backend's hook are
    reported too (late=True). outcomes=False: neither. A library older than
    0.4 has no outcomes; there outcomes=True gives none.

    The filter keywords choose which connects are reported; the kernel drops
    the others before they use ring space. None (or empty) means "any"; a
    connect is reported when it matches every list given, and within a list
    any one entry:
      pids, uids  process ids (tgid) and real user ids
      comms       thread names (str, 1 to 15 bytes)
      cgroups     cgroup v2 directories (absolute, or relative to the cgroup2
                  mount); their descendants match too
      families    "inet", "inet6", "unix" or AF_* numbers
      ports       remote ports: ints or inclusive (first, last) tuples
      exclude_self  leave out this process's own connects (default True)
    A single int or str is taken as a one-entry list. Change them while
    running with set_filters().
    """

    def __init__(self, backend: Union[str, List[str]] = "auto", ring_size: int = 0,
                 max_latency_ms: int = 0, dns: bool = True, dns_ports: Optional[List[int]] = None,
                 dns_payload_max: int = 0, library=None, *, pids=None, uids=None, comms=None,
                 cgroups=None, families=None, ports=None, exclude_self: bool = True,
                 log: Optional[Callable[[LogLevel, str], None]] = None,
                 log_level: Optional[int] = None, startup_timeout_ms: int = 0,
                 liveness_interval_ms: Optional[int] = 0, cgroup_root: Optional[str] = None,
                 outcomes: bool = True):
        self._lib = _lib(library)
        has_outcomes = _version_tuple(self._lib.connscope_version().decode()) >= _OUTCOMES_VERSION
        self._ptr = None
        self._pending: List[Event] = []
        self._exception: Optional[BaseException] = None
        self._log_exception: Optional[BaseException] = None
        if not isinstance(backend, str):
            backend = ",".join(backend)
        opts = _ffi.Opts()
        opts.sz = ctypes.sizeof(opts)
        opts.backends = backend.encode()
        opts.ring_size = ring_size or 0
        opts.max_latency_ms = max_latency_ms or 0
        opts.dns_mode = _ffi.DNS_ON if dns else _ffi.DNS_OFF
        if dns_ports:
            self._ports = (ctypes.c_uint16 * len(dns_ports))(*dns_ports)
            opts.dns_ports = self._ports
            opts.dns_port_count = len(dns_ports)
        opts.dns_payload_max = dns_payload_max or 0
        filters = _c_filters(pids=pids, uids=uids, comms=comms, cgroups=cgroups,
                             families=families, ports=ports, exclude_self=exclude_self)
        opts.filters = ctypes.pointer(filters)
        if log_level is not None:
            opts.log_level = int(log_level)
        # The C callbacks must outlive the session (the library logs from
        # set_filters() too): keep them on self. Without log, opts.log stays
        # NULL and the library says nothing.
        self._log = log
        if log is not None:
            self._on_log = _ffi.LogFn(self._log_cb)
            opts.log = self._on_log
        opts.startup_timeout_ms = startup_timeout_ms or 0
        if cgroup_root:
            opts.cgroup_root = _os.fsencode(cgroup_root)
        opts.liveness_interval_ms = (_ffi.LIVENESS_OFF if liveness_interval_ms is None
                                     else liveness_interval_ms or 0)
        self._on_health = _ffi.HealthFn(self._health_cb)
        opts.health = self._on_health
        self._on_connect = _ffi.ConnectFn(self._connect_cb)
        self._on_tcp_connect = _ffi.TcpConnectFn(self._tcp_cb)
        cb = _ffi.Callbacks()
        cb.sz = ctypes.sizeof(cb)
        cb.on_connect = self._on_connect
        cb.on_tcp_connect = self._on_tcp_connect
        # An older library refuses these fields set (non-zero bytes past what it knows).
        if has_outcomes:
            opts.outcomes_mode = _ffi.OUTCOMES_ON if outcomes else _ffi.OUTCOMES_OFF
            self._on_outcome = _ffi.OutcomeFn(self._outcome_cb)
            cb.on_outcome = self._on_outcome
        ptr = ctypes.POINTER(_ffi.Session)()
        rc = self._lib.connscope_session_new(ctypes.byref(opts), ctypes.byref(cb), ctypes.byref(ptr))
        if rc == 0:
            self._ptr = ptr
        if self._log_exception is not None:
            self.close()  # the caller never gets this session: do not leave it attached
        self._raise_log_exception()
        self._check(rc)

    def _log_cb(self, level, message, _ctx):
        if self._log_exception is not None:
            return  # the first failure is the one raised
        try:
            try:
                level = LogLevel(level)
            except ValueError:
                pass  # a level newer than this module: given as the int
            self._log(level, _text(message))
        except BaseException as e:  # noqa: B036 - re-raised by the call that logged
            self._log_exception = e

    def _raise_log_exception(self):
        if self._log_exception is not None:
            exc, self._log_exception = self._log_exception, None
            raise exc

    # The conversions of a C event, during its callback. The module's CLI
    # (__main__.py) turns events into the library's JSON lines instead.
    def _convert_connect(self, ev):
        return _connect_event(ev.contents)

    def _convert_tcp(self, ev):
        return _tcp_event(ev.contents)

    def _convert_outcome(self, ev):
        return _outcome_event(ev.contents)

    def _convert_health(self, event):
        return event

    # A callback that raises stops the poll (negative return); poll() re-raises.
    def _connect_cb(self, ev, _ctx):
        try:
            self._pending.append(self._convert_connect(ev))
            return 0
        except BaseException as e:  # noqa: B036 - re-raised by poll()
            self._exception = e
            return -ECALLBACK

    def _health_cb(self, ev, _ctx):
        try:
            e = ev.contents
            seq = e.sequence if _has(e.sz, _ffi.HealthEvent, "sequence") else 0
            self._pending.append(self._convert_health(
                HealthEvent(seq=seq, kind=_text(e.kind_name), what=_text(e.what),
                            message=_text(e.message), timestamp=e.timestamp_ns)))
        except BaseException as e:  # noqa: B036 - re-raised by poll()
            self._exception = e

    def _tcp_cb(self, ev, _ctx):
        try:
            self._pending.append(self._convert_tcp(ev))
            return 0
        except BaseException as e:  # noqa: B036
            self._exception = e
            return -ECALLBACK

    def _outcome_cb(self, ev, _ctx):
        try:
            self._pending.append(self._convert_outcome(ev))
            return 0
        except BaseException as e:  # noqa: B036
            self._exception = e
            return -ECALLBACK

    def _check(self, rc: int) -> int:
        if rc < 0:
            raise Error(rc, _text(self._lib.connscope_last_error())
                        or _text(self._lib.connscope_strerror(rc)))
        return rc

    def _session(self):
        if not self._ptr:
            raise Error(-_errno.EBADF, "the connscope session is closed")
        return self._ptr

    def _deliver(self, rc: int) -> List[Event]:
        # On an error the events converted so far stay queued: the next
        # poll() returns them first, so none is dropped uncounted.
        if self._exception is not None:
            exc, self._exception = self._exception, None
            raise exc
        self._check(rc)
        events, self._pending = self._pending, []
        return events

    def poll(self, timeout: Optional[float] = None) -> List[Event]:
        """Waits up to timeout seconds (None: without end, 0: not at all) and returns the events."""
        ms = -1 if timeout is None else max(0, int(timeout * 1000))
        return self._deliver(self._lib.connscope_session_poll(self._session(), ms))

    def consume(self) -> List[Event]:
        """Returns what the ring holds now, without waiting."""
        return self._deliver(self._lib.connscope_session_consume(self._session()))

    def fileno(self) -> int:
        """An fd that becomes readable when events wait (for select/selectors); then call consume()."""
        return self._check(self._lib.connscope_session_fd(self._session()))

    def __iter__(self):
        """Yields events forever (polling in short steps so Ctrl-C is seen)."""
        while True:
            yield from self.poll(0.5)

    def set_filters(self, *, pids=None, uids=None, comms=None, cgroups=None, families=None,
                    ports=None, exclude_self: bool = True) -> None:
        """Replaces the filters while running; the keywords are those of Session().

        The new set replaces the whole old one: a keyword left out means "any"
        (exclude_self: True). On failure (connscope.Error) the old filters stay.
        """
        filters = _c_filters(pids=pids, uids=uids, comms=comms, cgroups=cgroups,
                             families=families, ports=ports, exclude_self=exclude_self)
        rc = self._lib.connscope_session_set_filters(self._session(), ctypes.byref(filters))
        self._raise_log_exception()
        self._check(rc)

    def stats(self) -> Stats:
        """The counters."""
        st = _ffi.Stats()
        st.sz = ctypes.sizeof(st)
        self._check(self._lib.connscope_session_stats(self._session(), ctypes.byref(st)))
        return Stats(**{name: getattr(st, name) for name, _ in _ffi.Stats._fields_[1:]})

    def stats_json(self) -> str:
        """The counters as one line of JSON: the "stats" record of `connscope-trace --json`."""
        s = self._session()
        return _json_text(lambda buf, n: self._lib.connscope_session_stats_json(s, buf, n),
                          self._check)

    def backend(self) -> BackendInfo:
        """The backend in use and why."""
        s = self._session()
        info = _ffi.BackendInfo()
        info.sz = ctypes.sizeof(info)
        self._check(self._lib.connscope_session_backend(s, ctypes.byref(info)))
        tried = []
        for i in range(info.tried_count):
            st = _ffi.BackendStatus()
            st.sz = ctypes.sizeof(st)
            self._check(self._lib.connscope_session_backend_tried(s, i, ctypes.byref(st)))
            tried.append(BackendStatus(_text(st.name), bool(st.available), _text(st.reason)))
        return BackendInfo(name=_text(info.name), reason=_text(info.reason), dns=_text(info.dns),
                           gaps=[_text(info.gaps[i]) for i in range(info.gap_count)], tried=tried,
                           cgroup_root=_text(info.cgroup_root), cgroup_scope=_text(info.cgroup_scope))

    def close(self) -> None:
        """Detaches and frees everything; safe to call twice."""
        if self._ptr:
            ptr, self._ptr = self._ptr, None
            self._lib.connscope_session_free(ptr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass
