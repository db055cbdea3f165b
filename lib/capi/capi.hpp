// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Private to lib/capi: the one exception-to-code guard and the helpers for
// sz-first structs. Nothing here is installed.
#pragma once

#include <connscope/connscope.h>
#include <connscope/error.hpp>
#include <connscope/events.hpp>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <new>
#include <string>
#include <vector>

namespace connscope::capi {

// Records message as this thread's connscope_last_error() and returns code
// (negative). Never throws: on allocation failure a static message is kept.
int fail(int code, const char *message) noexcept;

// Runs body, the whole of one extern "C" function, and maps every exception
// to a negative code with its message recorded for connscope_last_error().
template <class Body>
int guard(Body &&body) noexcept
{
    try {
        return body();
    } catch (const Error &e) {
        int code = e.code().value();
        return fail(code > 0 ? -code : -CONNSCOPE_EINTERNAL, e.what());
    } catch (const std::bad_alloc &) {
        return fail(-ENOMEM, "out of memory");
    } catch (const std::exception &e) {
        std::string msg;
        try {
            msg = std::string("internal error (please report it): ") + e.what();
        } catch (...) {
            return fail(-CONNSCOPE_EINTERNAL, "internal error (please report it)");
        }
        return fail(-CONNSCOPE_EINTERNAL, msg.c_str());
    } catch (...) {
        return fail(-CONNSCOPE_EINTERNAL, "internal error (please report it): unknown exception");
    }
}

// One past the last byte of a member: what sz must cover for it to be read.
#define CONNSCOPE_OFFSETOFEND(type, field) (offsetof(type, field) + sizeof(((type *)nullptr)->field))

// The bytes of a growable struct this library knows: up to the end of its
// `<type>__last_field`, the one authoritative end next to the definition.
#define CONNSCOPE_KNOWN_SIZE(type) CONNSCOPE_OFFSETOFEND(type, type##__last_field)

// Holds when type##__last_field really is the last field: only padding may follow it.
#define CONNSCOPE_CHECK_LAST_FIELD(type)                                                           \
    static_assert(sizeof(type) - CONNSCOPE_KNOWN_SIZE(type) < alignof(type),                       \
                  #type "__last_field is not the last field of " #type)
CONNSCOPE_CHECK_LAST_FIELD(connscope_filters);
CONNSCOPE_CHECK_LAST_FIELD(connscope_opts);
CONNSCOPE_CHECK_LAST_FIELD(connscope_callbacks);
CONNSCOPE_CHECK_LAST_FIELD(connscope_stats);
CONNSCOPE_CHECK_LAST_FIELD(connscope_health_event);
CONNSCOPE_CHECK_LAST_FIELD(connscope_backend_info);
CONNSCOPE_CHECK_LAST_FIELD(connscope_backend_status);
CONNSCOPE_CHECK_LAST_FIELD(connscope_process);
CONNSCOPE_CHECK_LAST_FIELD(connscope_address);
CONNSCOPE_CHECK_LAST_FIELD(connscope_connect_event);
CONNSCOPE_CHECK_LAST_FIELD(connscope_tcp_connect_event);

// True when the caller's struct (sz-first) is large enough to hold field.
#define CONNSCOPE_HAS(ptr, type, field) ((ptr)->sz >= CONNSCOPE_OFFSETOFEND(type, field))

// libbpf's OPTS_VALID: sz must hold sz itself, and every byte between what
// this library knows (known) and the caller's sz must be zero, so settings a
// newer caller asks for are refused instead of ignored. Throws EINVAL.
void check_input_struct(const void *ptr, std::size_t sz, std::size_t known, const char *type_name);

// For output structs: sz must hold sz itself; bytes past known are zeroed.
void prepare_output_struct(void *ptr, std::size_t sz, std::size_t known, const char *type_name);

// Throws Error(EINVAL) saying which argument was NULL.
[[noreturn]] void null_argument(const char *function, const char *argument);

// Storage the C event structs point into while a callback runs; reused
// from event to event so dispatch allocates only when a string grows.
struct EventScratch {
    connscope_process process;
    connscope_address address;
    std::string type_name;
    std::string via_name;
    std::string family_name;
    std::string text;
    std::string ip_text;
    std::vector<const char *> results;
    std::string json;
    std::string lsm_name, tcp_name, outcome_name;
};

// Translations of the C++ events; out points into ev and scratch.
void to_c_event(const SecuritySocketConnect &ev, EventScratch &scratch, connscope_connect_event &out);
void to_c_event(const NetTcpConnect &ev, EventScratch &scratch, connscope_tcp_connect_event &out);
void to_c_event(const ConnectOutcome &ev, EventScratch &scratch, connscope_outcome_event &out);

// The C event a callback on this thread is running with, and the C++ event
// it came from, so connscope_*_event_json() can format the original.
struct Delivering {
    const void *c_event = nullptr;
    const SecuritySocketConnect *connect = nullptr;
    const NetTcpConnect *tcp = nullptr;
    const ConnectOutcome *outcome = nullptr;
};
extern thread_local Delivering delivering;

// snprintf's contract for a finished text: copies what fits, returns its length.
int copy_out(const std::string &text, char *buf, std::size_t len);

} // namespace connscope::capi
