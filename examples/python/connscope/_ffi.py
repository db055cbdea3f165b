# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""ctypes declarations of <connscope/connscope.h>. Private to the package.

The structures mirror the C header field for field; tests/python/test_layout.py
checks them against tests/abi/layout.txt, the committed C layout.
"""

import ctypes
import ctypes.util
import os

from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_int, c_int32,
                    c_size_t, c_uint8, c_uint16, c_uint32, c_uint64, c_void_p)

COMM_LEN = 16
IP_TEXT_LEN = 48
CONTAINER_ID_LEN = 65

EBACKEND = 4000
ENOCGROUP2 = 4001
ENOBTF = 4002
EMOVED = 4003
ECALLBACK = 4004
EINTERNAL = 4005
ENOTFIRING = 4006
ECGROUPSUBTREE = 4007

DNS_DEFAULT = 0
DNS_ON = 1
DNS_OFF = 2

SELF_DEFAULT = 0
SELF_EXCLUDE = 1
SELF_INCLUDE = 2

ADDR_INET = 1
ADDR_UNIX = 2
ADDR_UNKNOWN = 3

UNIX_PATH = 1
UNIX_ABSTRACT = 2
UNIX_UNNAMED = 3

# connscope_connect_event::via
VIA_UNKNOWN = 0
VIA_CONNECT = 1
VIA_FASTOPEN = 2
VIA_IO_URING = 3

LOG_ERROR = 1
LOG_WARNING = 2
LOG_INFO = 3
LOG_DEBUG = 4

# connscope_opts::outcomes_mode (since 0.4)
OUTCOMES_DEFAULT = 0
OUTCOMES_ON = 1
OUTCOMES_OFF = 2

# connscope_outcome_event::lsm
LSM_UNKNOWN = 0
LSM_ALLOWED = 1
LSM_DENIED = 2

# connscope_outcome_event::tcp
TCP_NONE = 0
TCP_ESTABLISHED = 1
TCP_REFUSED = 2
TCP_TIMED_OUT = 3
TCP_UNREACHABLE = 4
TCP_CLOSED = 5


class PortRange(Structure):
    _fields_ = [
        ("first", c_uint16),
        ("last", c_uint16),
    ]


class Filters(Structure):
    _fields_ = [
        ("sz", c_size_t),
        ("exclude_self", c_int),
        ("pids", POINTER(c_uint32)),
        ("pid_count", c_size_t),
        ("uids", POINTER(c_uint32)),
        ("uid_count", c_size_t),
        ("comms", POINTER(c_char_p)),
        ("comm_count", c_size_t),
        ("cgroups", POINTER(c_char_p)),
        ("cgroup_count", c_size_t),
        ("families", POINTER(c_uint16)),
        ("family_count", c_size_t),
        ("ports", POINTER(PortRange)),
        ("port_count", c_size_t),
    ]


LogFn = CFUNCTYPE(None, c_int, c_char_p, c_void_p)

LIVENESS_OFF = 0xFFFFFFFF

HEALTH_CANARY_MISSED = 1
HEALTH_LINK_DETACHED = 2
HEALTH_REATTACHED = 3
HEALTH_REATTACH_FAILED = 4


class HealthEvent(Structure):
    _fields_ = [
        ("sz", c_size_t),
        ("kind", c_int),
        ("kind_name", c_char_p),
        ("what", c_char_p),
        ("message", c_char_p),
        ("timestamp_ns", c_uint64),
        ("sequence", c_uint64),      # since 0.4
    ]


HealthFn = CFUNCTYPE(None, POINTER(HealthEvent), c_void_p)


class Opts(Structure):
    _fields_ = [
        ("sz", c_size_t),
        ("backends", c_char_p),
        ("ring_size", c_size_t),
        ("max_latency_ms", c_uint32),
        ("dns_mode", c_int),
        ("dns_ports", POINTER(c_uint16)),
        ("dns_port_count", c_size_t),
        ("dns_payload_max", c_uint32),
        ("dns_cache_grace_s", c_uint32),
        ("dns_cache_max_entries", c_size_t),
        ("filters", POINTER(Filters)),
        ("log", LogFn),
        ("log_ctx", c_void_p),
        ("log_level", c_int),
        ("startup_timeout_ms", c_uint32),
        ("liveness_interval_ms", c_uint32),
        ("health", HealthFn),
        ("health_ctx", c_void_p),
        ("cgroup_root", c_char_p),
        ("outcomes_mode", c_int),    # since 0.4
    ]


# Reached through pointers from the events; size is what the library filled.
class Process(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("timestamp_ns", c_uint64),
        ("cgroup_id", c_uint64),
        ("pid", c_uint32),
        ("tid", c_uint32),
        ("ppid", c_uint32),
        ("uid", c_uint32),
        ("gid", c_uint32),
        ("mnt_ns", c_uint32),
        ("net_ns", c_uint32),
        ("pid_ns", c_uint32),
        ("user_ns", c_uint32),
        ("uts_ns", c_uint32),
        ("ipc_ns", c_uint32),
        ("cgroup_ns", c_uint32),
        ("comm", c_char * COMM_LEN),
        ("container_id", c_char * CONTAINER_ID_LEN),  # since 0.4
    ]


class Address(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("kind", c_int32),
        ("family", c_uint16),
        ("port", c_uint16),
        ("flowinfo", c_uint32),
        ("scope_id", c_uint32),
        ("ip", c_uint8 * 16),
        ("ip_text", c_char * IP_TEXT_LEN),
        ("unix_kind", c_int32),
        ("addrlen", c_uint32),
        # Raw bytes that may hold NUL: read with string_at(ptr, unix_name_len).
        ("unix_name", c_void_p),
        ("unix_name_len", c_size_t),
        ("family_name", c_char_p),
        ("text", c_char_p),
    ]


class ConnectEvent(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("sockfd", c_int32),
        ("process", POINTER(Process)),
        ("type", c_int32),
        ("toctou", c_int32),
        ("type_name", c_char_p),
        ("remote_addr", POINTER(Address)),
        ("via", c_int32),
        ("via_name", c_char_p),
        ("connect_id", c_uint64),    # since 0.4
        ("sequence", c_uint64),
        ("late", c_int32),
    ]


class TcpConnectEvent(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("sockfd", c_int32),
        ("process", POINTER(Process)),
        ("dst_ip", c_char * IP_TEXT_LEN),
        ("dst_port", c_uint16),
        ("results", POINTER(c_char_p)),
        ("result_count", c_size_t),
        ("via", c_int32),
        ("via_name", c_char_p),
        ("connect_id", c_uint64),    # since 0.4
        ("sequence", c_uint64),
    ]


class OutcomeEvent(Structure):
    """What became of a connect (since 0.4)."""
    _fields_ = [
        ("size", c_uint32),
        ("pid", c_uint32),
        ("connect_id", c_uint64),
        ("sequence", c_uint64),
        ("timestamp_ns", c_uint64),
        ("duration_ns", c_uint64),
        ("tid", c_uint32),
        ("via", c_int32),
        ("via_name", c_char_p),
        ("result_known", c_int32),
        ("result", c_int32),
        ("lsm", c_int32),
        ("lsm_error", c_int32),
        ("lsm_name", c_char_p),
        ("tcp", c_int32),
        ("tcp_error", c_int32),
        ("tcp_name", c_char_p),
        ("outcome_name", c_char_p),
        ("local_addr", POINTER(Address)),   # NULL when not known
        ("socket_cookie", c_uint64),
    ]


ConnectFn = CFUNCTYPE(c_int, POINTER(ConnectEvent), c_void_p)
TcpConnectFn = CFUNCTYPE(c_int, POINTER(TcpConnectEvent), c_void_p)
OutcomeFn = CFUNCTYPE(c_int, POINTER(OutcomeEvent), c_void_p)


class Callbacks(Structure):
    _fields_ = [
        ("sz", c_size_t),
        ("ctx", c_void_p),
        ("on_connect", ConnectFn),
        ("on_tcp_connect", TcpConnectFn),
        ("on_outcome", OutcomeFn),   # since 0.4
    ]


class Stats(Structure):
    _fields_ = [("sz", c_size_t)] + [(name, c_uint64) for name in (
        "events", "tcp_events", "dns_messages", "lost", "lost_ring_connect", "lost_ring_dns",
        "decode_errors", "dns_truncated", "dns_malformed", "dns_tcp_dropped_bytes",
        "dns_names_evicted", "callback_errors", "canaries_sent", "canaries_missed",
        "links_detached", "reattachments", "unwatched_ns",
        "outcomes", "lost_ring_outcome",  # since 0.4
        "dns_dropped_reserve", "dns_evicted_budget", "dns_evicted_global", "dns_expired",
        "dns_cache_entries", "dns_cache_bytes", "dns_cache_bytes_max", "dns_cache_bytes_allocated",
        "dns_cache_budget_groups")]


class BackendInfo(Structure):
    _fields_ = [
        ("sz", c_size_t),
        ("name", c_char_p),
        ("reason", c_char_p),
        ("dns", c_char_p),
        ("gaps", POINTER(c_char_p)),
        ("gap_count", c_size_t),
        ("tried_count", c_size_t),
        ("cgroup_root", c_char_p),
        ("cgroup_scope", c_char_p),
    ]


class BackendStatus(Structure):
    _fields_ = [
        ("sz", c_size_t),
        ("name", c_char_p),
        ("available", c_int),
        ("reason", c_char_p),
    ]


STRUCTS = {
    "connscope_opts": Opts,
    "connscope_port_range": PortRange,
    "connscope_filters": Filters,
    "connscope_callbacks": Callbacks,
    "connscope_process": Process,
    "connscope_address": Address,
    "connscope_connect_event": ConnectEvent,
    "connscope_tcp_connect_event": TcpConnectEvent,
    "connscope_outcome_event": OutcomeEvent,
    "connscope_stats": Stats,
    "connscope_backend_info": BackendInfo,
    "connscope_backend_status": BackendStatus,
    "connscope_health_event": HealthEvent,
}


class Session(Structure):
    """The opaque connscope_session."""


def _installed_library():
    """The library installed with this package, from the generated _install module.

    The relative path first (from this package's directory to the library's,
    both under the prefix), so a tree copied or staged through DESTDIR loads
    its own library; then the absolute path. None in the source tree, where
    there is no _install module.
    """
    try:
        from . import _install
    except ImportError:
        return None
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (os.path.join(here, _install.LIBRARY_RELATIVE), _install.LIBRARY_ABSOLUTE):
        if os.path.exists(candidate):
            return os.path.normpath(candidate)
    return None


def find_library(path=None):
    """The path of libconnscope to load.

    path, else $CONNSCOPE_LIBRARY, else the library installed with this
    package, else the linker's search (ctypes.util.find_library), else the soname.
    """
    if path:
        return os.fspath(path)
    env = os.environ.get("CONNSCOPE_LIBRARY")
    if env:
        return env
    installed = _installed_library()
    if installed:
        return installed
    found = ctypes.util.find_library("connscope")
    if found:
        return found
    # find_library needs ldconfig or a compiler; try the soname directly.
    return "libconnscope.so.0"


def load(path=None):
    """Loads the library and declares the prototypes of its functions."""
    lib = ctypes.CDLL(find_library(path))
    session_p = POINTER(Session)
    protos = {
        "connscope_version": (c_char_p, []),
        "connscope_strerror": (c_char_p, [c_int]),
        "connscope_last_error": (c_char_p, []),
        "connscope_session_new": (c_int, [POINTER(Opts), POINTER(Callbacks), POINTER(session_p)]),
        "connscope_session_free": (None, [session_p]),
        "connscope_session_poll": (c_int, [session_p, c_int]),
        "connscope_session_consume": (c_int, [session_p]),
        "connscope_session_fd": (c_int, [session_p]),
        "connscope_session_set_filters": (c_int, [session_p, POINTER(Filters)]),
        "connscope_session_stats": (c_int, [session_p, POINTER(Stats)]),
        "connscope_session_backend": (c_int, [session_p, POINTER(BackendInfo)]),
        "connscope_session_backend_tried": (c_int, [session_p, c_size_t, POINTER(BackendStatus)]),
        "connscope_session_stats_json": (c_int, [session_p, POINTER(c_char), c_size_t]),
        "connscope_connect_event_json": (c_int, [POINTER(ConnectEvent), POINTER(c_char), c_size_t]),
        "connscope_tcp_connect_event_json": (c_int, [POINTER(TcpConnectEvent), POINTER(c_char), c_size_t]),
    }
    # Since 0.4: declared only when the library has it, so an older library
    # still loads (the module then asks for no outcomes).
    optional = {
        "connscope_outcome_event_json": (c_int, [POINTER(OutcomeEvent), POINTER(c_char), c_size_t]),
    }
    for name, proto in optional.items():
        if hasattr(lib, name):
            protos[name] = proto
    for name, (restype, argtypes) in protos.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib
